//! Device files, so the CLI can power-cycle a device across runs:
//!
//! ```text
//!  <dir>/flash.bin    raw flash contents (size bytes), or
//!  <dir>/flash.pages  the page journal (see `journal`), once the device uses it
//!  <dir>/otp.bin      fuse words, little-endian u32 each
//!  <dir>/device.json  {"format", "config", "uds" (hex), "otp_locked_regions", "rng_state"}
//! ```
//!
//! Each file is written to `<name>.tmp`, synced, then renamed over the old one, so a crash of
//! the host leaves either the old or the new file. Which write units were programmed with
//! erased-value bytes is not saved: after `open`, a unit counts as programmed iff it does not
//! read as erased.

use std::fs;
use std::io::Write;
use std::path::Path;

use castellan_hal::UDS_LEN;
use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::device::{DeviceConfig, SimDevice};
use crate::flash::SimFlash;
use crate::journal::{self, FLASH_JOURNAL_FILE};
use crate::otp::SimOtp;
use crate::secret::{SimRng, SimUds};

/// Name of the flash image file in a device directory.
pub const FLASH_FILE: &str = "flash.bin";
/// Name of the fuse image file in a device directory.
pub const OTP_FILE: &str = "otp.bin";
/// Name of the description file in a device directory.
pub const DEVICE_FILE: &str = "device.json";

const FORMAT: &str = "castellan-sim-device/1";

#[derive(Serialize, Deserialize)]
struct DeviceFile {
    format: String,
    config: DeviceConfig,
    uds: String,
    otp_locked_regions: Vec<usize>,
    rng_state: Option<u64>,
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), SimError> {
    if dir.join(DEVICE_FILE).exists() {
        return Err(SimError::AlreadyExists(dir.to_path_buf()));
    }
    fs::create_dir_all(dir).map_err(|source| SimError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

pub(crate) fn save(dev: &SimDevice, dir: &Path) -> Result<(), SimError> {
    let journal = dir.join(FLASH_JOURNAL_FILE);
    if journal.exists() {
        let geo = dev.flash.page_geometry();
        let pages = dev.flash.settled();
        let mut saved = dev.saved_pages();
        match saved.as_deref() {
            Some(old) => journal::append(&journal, &geo, &pages, old)?,
            None => journal::write_full(&journal, &geo, &pages)?,
        }
        *saved = Some(pages);
    } else {
        write_atomic(&dir.join(FLASH_FILE), dev.flash.contents())?;
    }
    let otp: Vec<u8> = dev
        .otp
        .contents()
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    write_atomic(&dir.join(OTP_FILE), &otp)?;
    let file = DeviceFile {
        format: FORMAT.to_owned(),
        config: dev.config().clone(),
        uds: hex::encode(dev.uds.secret_for_tests()),
        otp_locked_regions: dev.otp.locked_regions(),
        rng_state: dev.rng.seeded_state(),
    };
    let path = dir.join(DEVICE_FILE);
    let mut json = serde_json::to_vec_pretty(&file).map_err(|e| corrupt(&path, e.to_string()))?;
    json.push(b'\n');
    write_atomic(&path, &json)
}

pub(crate) fn load(dir: &Path) -> Result<SimDevice, SimError> {
    let path = dir.join(DEVICE_FILE);
    let file: DeviceFile =
        serde_json::from_slice(&read(&path)?).map_err(|e| corrupt(&path, e.to_string()))?;
    if file.format != FORMAT {
        return Err(corrupt(
            &path,
            format!("format {:?}, expected {FORMAT:?}", file.format),
        ));
    }
    let config = file.config;
    config.validate()?;
    let mut uds = [0u8; UDS_LEN];
    hex::decode_to_slice(&file.uds, &mut uds)
        .map_err(|e| corrupt(&path, format!("uds: {e} (need {UDS_LEN} hex bytes)")))?;

    let journal = dir.join(FLASH_JOURNAL_FILE);
    let (flash, saved) = if journal.exists() {
        let (flash, pages) = journal::load(&journal, config.flash)?;
        (flash, Some(pages))
    } else {
        let flash_path = dir.join(FLASH_FILE);
        let image = read(&flash_path)?;
        if image.len() != config.flash.size as usize {
            let reason = format!("{} bytes, config says {}", image.len(), config.flash.size);
            return Err(corrupt(&flash_path, reason));
        }
        (SimFlash::from_image(config.flash, image)?, None)
    };

    let otp_path = dir.join(OTP_FILE);
    let raw = read(&otp_path)?;
    if raw.len() != config.otp.words as usize * 4 {
        let reason = format!(
            "{} bytes, config says {} words",
            raw.len(),
            config.otp.words
        );
        return Err(corrupt(&otp_path, reason));
    }
    let words = raw
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
        .collect();
    let otp = SimOtp::from_parts(config.otp, words, &file.otp_locked_regions)?;

    let rng = match file.rng_state {
        Some(state) => SimRng::seeded(state),
        None => SimRng::from_os(),
    };
    let dev = SimDevice::from_parts(config, flash, otp, SimUds::new(uds), rng);
    *dev.saved_pages() = saved;
    Ok(dev)
}

/// Moves the device saved in `dir` from `flash.bin` to the page journal: later saves append
/// the pages that changed.
pub(crate) fn use_page_journal(dev: &SimDevice, dir: &Path) -> Result<(), SimError> {
    let journal = dir.join(FLASH_JOURNAL_FILE);
    let pages = dev.flash.settled();
    journal::write_full(&journal, &dev.flash.page_geometry(), &pages)?;
    *dev.saved_pages() = Some(pages);
    let flash = dir.join(FLASH_FILE);
    match fs::remove_file(&flash) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SimError::Io {
            path: flash,
            source: e,
        }),
        _ => Ok(()),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SimError> {
    fs::read(path).map_err(|source| SimError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let io = |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::File::create(tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(tmp, path).map_err(io)
}

fn corrupt(path: &Path, reason: String) -> SimError {
    SimError::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
}
