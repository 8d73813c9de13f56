//! The scenarios: a start state, the action whose every flash operation gets a power cut, and
//! the outcomes that are acceptable once the device has recovered.
//!
//! | scenario | start | action | first recovered boot | settled state |
//! |---|---|---|---|---|
//! | upgrade | A running, B requested (test) | boot | B (test); A once the test swap had completed | A, B in secondary (reverted: nobody confirms) |
//! | permanent | A running, B requested (permanent) | boot | B | B confirmed, A in secondary, counter 2 |
//! | revert | B running unconfirmed, A in secondary | boot | A | A, B in secondary, counter 1 |
//! | confirm | B running unconfirmed | app confirms, boot | B or A | B counter 2 if image_ok was written, else A counter 1 |
//! | overwrite | A running, B requested (overwrite-only) | boot | B | B confirmed, counter 2, request consumed |

use std::fmt;

use castellan_boot::{
    BootConfig, BootError, FlashLayout, Geometry, JournalState, UpgradeMode, confirm_image,
    read_journal, read_slot_trailer, request_upgrade,
};
use castellan_image::trailer::{FlagState, SwapType};
use castellan_sim::{FlashConfig, SimDevice};

use crate::fixture::{Images, boot, boot_config, layout, provisioned_device, write_partition};

/// A power-loss scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// A test upgrade from A to B.
    Upgrade,
    /// A permanent upgrade from A to B.
    Permanent,
    /// The revert of an unconfirmed B back to A.
    Revert,
    /// The application confirming B, then the boot that raises the counter.
    Confirm,
    /// An overwrite-only upgrade from A to B.
    Overwrite,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 5] = [
        Scenario::Upgrade,
        Scenario::Permanent,
        Scenario::Revert,
        Scenario::Confirm,
        Scenario::Overwrite,
    ];

    /// The upgrade mode the bootloader runs in.
    pub fn mode(self) -> UpgradeMode {
        match self {
            Scenario::Overwrite => UpgradeMode::OverwriteOnly,
            _ => UpgradeMode::Swap,
        }
    }

    /// The bootloader configuration.
    pub fn config(self) -> BootConfig<'static> {
        boot_config(self.mode())
    }

    /// Builds the start state on a fresh device of geometry `flash`.
    pub fn setup(self, flash: FlashConfig, images: &Images) -> Result<SimDevice, String> {
        let mut dev = provisioned_device(flash, images, self.mode())?;
        let l = layout(&dev).map_err(|e| e.to_string())?;
        let stage = |dev: &mut SimDevice, l: &FlashLayout, permanent: bool| {
            write_partition(&mut dev.flash, l.secondary, &images.b.bytes)?;
            request_upgrade(&mut dev.flash, l, permanent)
        };
        match self {
            Scenario::Upgrade | Scenario::Overwrite => stage(&mut dev, &l, false),
            Scenario::Permanent => stage(&mut dev, &l, true),
            Scenario::Revert | Scenario::Confirm => stage(&mut dev, &l, false).and_then(|()| {
                let r = boot(&mut dev, &self.config())?;
                if r.application.digest != images.b.digest || r.confirmed {
                    return Err(BootError::Layout("setup: B did not boot as a test image"));
                }
                Ok(())
            }),
        }
        .map_err(|e| format!("setup of {self}: {e}"))?;
        dev.power_cycle();
        Ok(dev)
    }

    /// The action that gets the power cuts.
    pub fn act(self, dev: &mut SimDevice) -> Result<(), BootError> {
        if self == Scenario::Confirm {
            let l = layout(dev)?;
            confirm_image(&mut dev.flash, &l)?;
        }
        boot(dev, &self.config()).map(|_| ())
    }

    /// What the device must do next, judged from the state right after a cut (the journal and
    /// the trailers tell how far the action got).
    pub fn expectation(self, dev: &mut SimDevice) -> Result<Expect, BootError> {
        use Img::{A, B};
        let l = layout(dev)?;
        let g = Geometry::of(&dev.flash)?;
        let journal = read_journal(&mut dev.flash, &l)?;
        let primary = read_slot_trailer(&mut dev.flash, &g, l.primary)?;
        let secondary = read_slot_trailer(&mut dev.flash, &g, l.secondary)?;
        Ok(match self {
            Scenario::Upgrade => {
                // B runs next while the test swap is under way or not yet begun; once it is
                // complete, the test image has had its one boot (even if the power went before
                // it ran) and the device reverts to A.
                let testing = match journal {
                    JournalState::InProgress { kind, .. } => kind == SwapType::Test,
                    JournalState::Idle => secondary.is_upgrade_request(),
                    JournalState::Done { .. } => false,
                };
                Expect::new(&[if testing { B } else { A }], Settled::swapped(A, B, 1))
            }
            Scenario::Permanent => Expect::new(&[B], Settled::swapped(B, A, 2)),
            Scenario::Revert => Expect::new(&[A], Settled::swapped(A, B, 1)),
            Scenario::Confirm => {
                // B stays only if the confirmation was written completely before any revert
                // began; a torn or missing image_ok means not confirmed.
                let kept = journal
                    == JournalState::Done {
                        kind: SwapType::Test,
                    }
                    && primary.image_ok == FlagState::Set;
                if kept {
                    Expect::new(&[B], Settled::swapped(B, A, 2))
                } else {
                    Expect::new(&[A], Settled::swapped(A, B, 1))
                }
            }
            Scenario::Overwrite => Expect::new(
                &[B],
                Settled {
                    primary: B,
                    secondary: None,
                    counter: 2,
                },
            ),
        })
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::Upgrade => "upgrade",
            Scenario::Permanent => "permanent-upgrade",
            Scenario::Revert => "revert",
            Scenario::Confirm => "confirm",
            Scenario::Overwrite => "overwrite-upgrade",
        })
    }
}

/// One of the two application images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Img {
    /// v1.0.0, counter 1.
    A,
    /// v1.1.0, counter 2.
    B,
}

/// The state a device must settle in once nothing is left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// The image in (and booting from) the primary slot, confirmed.
    pub primary: Img,
    /// The image kept in the secondary slot (`None`: no pending request is left there).
    pub secondary: Option<Img>,
    /// The application anti-rollback counter.
    pub counter: u32,
}

impl Settled {
    fn swapped(primary: Img, secondary: Img, counter: u32) -> Self {
        Settled {
            primary,
            secondary: Some(secondary),
            counter,
        }
    }
}

/// Acceptable outcomes of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Images the first successful boot after the cut(s) may run.
    pub first: Vec<Img>,
    /// The state after settling.
    pub settled: Settled,
}

impl Expect {
    fn new(first: &[Img], settled: Settled) -> Self {
        Expect {
            first: first.to_vec(),
            settled,
        }
    }
}
