//! The peer drivers: a missing peer fails the test with the command that installs it.

use castellan_testkit::peers;

#[test]
fn a_tool_on_the_path_is_found() {
    assert!(peers::on_path("sh"));
    peers::require_tool("sh", "apt-get install -y dash");
    assert!(!peers::on_path("castellan-no-such-tool"));
}

#[test]
fn a_missing_tool_fails_with_its_install_command_and_the_test_command() {
    let err = std::panic::catch_unwind(|| {
        peers::require_tool("castellan-no-such-tool", "apt-get install -y nothing")
    })
    .unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("`castellan-no-such-tool`"), "{msg}");
    assert!(msg.contains("apt-get install -y nothing"), "{msg}");
    assert!(msg.contains(peers::TEST_COMMAND), "{msg}");
}

#[test]
fn a_missing_python_module_fails_with_its_install_command() {
    let err = std::panic::catch_unwind(|| {
        peers::require_python_modules("nothing", "castellan_no_such_module", "pip install nothing")
    })
    .unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("pip install nothing"), "{msg}");
}

#[test]
fn softhsm_configuration_points_at_the_token_directory() {
    let conf = peers::softhsm::config(std::path::Path::new("/tmp/tokens"));
    assert_eq!(
        conf,
        "directories.tokendir = /tmp/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
    );
}

#[test]
fn postgres_is_installed_by_the_test_command() {
    // `cargo xtask deps` (run by the README's test command) installs it on this machine.
    peers::postgres::require();
    assert!(peers::postgres::installed());
}
