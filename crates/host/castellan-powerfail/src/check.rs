//! The invariants checked after every power cut: the device boots again and again until it
//! settles, and every boot and the settled state are checked.
//!
//! After each boot:
//! - the boot succeeds: there is no state in which neither slot boots;
//! - the image that runs is one of the authorized images (A or B), signed by the root key;
//! - its security counter is at least the confirmed counter in OTP, which never went down and
//!   never exceeds the highest counter of an authorized image;
//! - the first boot runs one of the images the scenario allows (the upgrade completes, or the
//!   revert is clean).
//!
//! Once a boot has nothing left to do (no upgrade action), the settled state must be the
//! scenario's: the expected image confirmed in the primary slot, byte for byte; the other image
//! intact in the secondary slot (so a revert or a later upgrade still works), or no pending
//! request left there; the expected counter.

use castellan_boot::{
    CounterId, Geometry, UpgradeAction, read_security_counter, read_slot_trailer,
};
use castellan_hal::Partition;
use castellan_image::signer_id;
use castellan_sim::SimDevice;

use crate::fixture::{Images, boot, layout, root_key};
use crate::scenario::{Expect, Img, Scenario};

/// Boots after a settled state is reached at the latest.
const MAX_BOOTS: usize = 5;

/// Powers the device up, boots it until it settles, and checks every invariant.
/// `floor` is the anti-rollback counter before the scenario's action.
pub fn recover_and_check(
    dev: &mut SimDevice,
    scenario: Scenario,
    images: &Images,
    expect: &Expect,
    floor: u32,
) -> Result<(), String> {
    let config = scenario.config();
    let root = signer_id(&root_key().public_spki_der());
    let highest = images.a.counter.max(images.b.counter);
    let mut last_counter = floor;
    dev.power_cycle();
    for n in 0..MAX_BOOTS {
        let r = boot(dev, &config).map_err(|e| format!("boot #{n} after the cut failed: {e}"))?;
        let img = images
            .by_digest(&r.application.digest)
            .ok_or_else(|| format!("boot #{n} ran an image that is neither A nor B"))?;
        if r.application.signer_id != root {
            return Err(format!("boot #{n} ran an image not signed by the root key"));
        }
        let counter = read_security_counter(&mut dev.otp, CounterId::Application)
            .map_err(|e| format!("reading the counter: {e}"))?;
        if counter < last_counter {
            return Err(format!(
                "anti-rollback counter went down: {last_counter} -> {counter}"
            ));
        }
        if counter > highest {
            return Err(format!(
                "anti-rollback counter {counter} above every authorized image"
            ));
        }
        if img.counter < counter {
            return Err(format!(
                "boot #{n} ran {} (counter {}) below the confirmed counter {counter}",
                img.name, img.counter
            ));
        }
        if r.security_counter.after != counter {
            return Err(format!(
                "boot #{n} reported counter {} but OTP holds {counter}",
                r.security_counter.after
            ));
        }
        if n == 0
            && !expect
                .first
                .iter()
                .any(|i| image(images, *i).digest == img.digest)
        {
            return Err(format!(
                "first boot after the cut ran {} ({}), expected one of {:?}",
                img.name, r.upgrade, expect.first
            ));
        }
        last_counter = counter;
        dev.power_cycle();
        if r.upgrade == UpgradeAction::None {
            return check_settled(dev, images, expect, img.name, r.confirmed, counter);
        }
    }
    Err(format!(
        "the device did not settle within {MAX_BOOTS} boots"
    ))
}

fn image(images: &Images, i: Img) -> &crate::fixture::Image {
    match i {
        Img::A => &images.a,
        Img::B => &images.b,
    }
}

fn check_settled(
    dev: &mut SimDevice,
    images: &Images,
    expect: &Expect,
    running: &str,
    confirmed: bool,
    counter: u32,
) -> Result<(), String> {
    let s = expect.settled;
    let want = image(images, s.primary);
    if running != want.name || !confirmed {
        return Err(format!(
            "settled on {running} (confirmed: {confirmed}), expected {} confirmed",
            want.name
        ));
    }
    if counter != s.counter {
        return Err(format!(
            "settled with counter {counter}, expected {}",
            s.counter
        ));
    }
    let l = layout(dev).map_err(|e| e.to_string())?;
    if !holds(dev, l.primary, &want.bytes) {
        return Err(format!(
            "primary slot does not hold {} byte for byte",
            want.name
        ));
    }
    match s.secondary {
        Some(i) => {
            let other = image(images, i);
            if !holds(dev, l.secondary, &other.bytes) {
                return Err(format!(
                    "secondary slot does not hold {} byte for byte",
                    other.name
                ));
            }
        }
        None => {
            let g = Geometry::of(&dev.flash).map_err(|e| e.to_string())?;
            let t =
                read_slot_trailer(&mut dev.flash, &g, l.secondary).map_err(|e| e.to_string())?;
            if t.is_upgrade_request() {
                return Err("an upgrade request is still pending in the secondary slot".into());
            }
        }
    }
    Ok(())
}

fn holds(dev: &SimDevice, part: Partition, bytes: &[u8]) -> bool {
    let start = part.offset as usize;
    dev.flash
        .contents()
        .get(start..start + bytes.len())
        .is_some_and(|c| c == bytes)
}
