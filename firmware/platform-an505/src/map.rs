//! The memory map of the images and the partition table of the (host-file backed) flash.
//!
//! ```text
//!  code SRAM (ZBT SSRAM1, MPC0)         secure alias 0x1000_0000, non-secure alias 0x0000_0000
//!  0x1000_0000  ROM stage (loaded by QEMU -kernel; "immutable": nothing writes it)   256 KiB
//!  0x1004_0000  bootloader, copied from flash by the ROM after verification          256 KiB
//!  0x1008_0000  secure partition: vector table, code; its last 2 KiB (0x100B_F800) is the
//!               veneer page, the only non-secure-callable memory                     256 KiB
//!  0x1020_0000  non-secure application (= NS alias 0x0020_0000), copied by the bootloader
//!  SSRAM (MPC1)  0x3800_0000  secure RAM, reused by each secure stage in turn; the last 4 KiB
//!               (0x381F_F000) is the hand-off page between stages
//!  SSRAM (MPC2)  0x2820_0000  non-secure RAM: application 1 MiB, then the download buffer
//! ```
//!
//! Flash (a 1.3 MiB host file, `castellan-flash.bin`, 4 KiB sectors, 4-byte write unit):
//!
//! ```text
//!  0x00_0000 bootloader  256 KiB   image verified by the ROM stage
//!  0x04_0000 primary     512 KiB   combined image: secure partition + non-secure application
//!  0x0C_0000 secondary   512 KiB   update candidate / previous image after a swap
//!  0x14_0000 scratch       4 KiB   swap buffer
//!  0x14_1000 status        4 KiB   swap journal
//!  0x14_2000 storage key   4 KiB   wrapped storage root key of the secure services
//!  0x14_3000 storage      16 KiB   trusted storage (two 8 KiB banks)
//! ```

use castellan_hal::Partition;

/// Where QEMU loads the ROM stage (secure alias of code SRAM; VTOR_S at reset).
pub const ROM_BASE: u32 = 0x1000_0000;
/// Where the ROM copies the bootloader and starts it.
pub const BOOTLOADER_EXEC: u32 = 0x1004_0000;
/// Largest bootloader binary.
pub const BOOTLOADER_MAX: u32 = 0x4_0000;
/// Where the bootloader copies the secure partition.
pub const SECURE_EXEC: u32 = 0x1008_0000;
/// Largest secure partition binary (veneer page included).
pub const SECURE_MAX: u32 = 0x4_0000;
/// Size of the veneer page.
pub const VENEER_SIZE: u32 = 0x800;
/// The secure partition's veneer page (last 2 KiB of its window, pinned by the link):
/// the only non-secure-callable memory.
pub const VENEER_BASE: u32 = SECURE_EXEC + SECURE_MAX - VENEER_SIZE;
/// Vector table of the secure partition.
pub const SECURE_VECTORS: u32 = SECURE_EXEC;
/// The non-secure application, seen from the secure side (secure alias) when copying.
pub const NS_EXEC_SECURE_ALIAS: u32 = 0x1020_0000;
/// The non-secure application's address (non-secure alias): its vector table.
pub const NS_EXEC: u32 = 0x0020_0000;
/// Largest non-secure application binary.
pub const NS_MAX: u32 = 0x4_0000;
/// Non-secure code region (SAU region 0, MPC0 upper half).
pub const NS_CODE_START: u32 = 0x0020_0000;
/// End (exclusive) of the non-secure code region.
pub const NS_CODE_END: u32 = 0x0040_0000;
/// Non-secure RAM (SAU region 1, MPC2).
pub const NS_RAM_START: u32 = 0x2820_0000;
/// End (exclusive) of non-secure RAM.
pub const NS_RAM_END: u32 = 0x2840_0000;
/// Where the runner places an update image for the demo application ("downloaded"): non-secure
/// RAM, first word = length, then the image.
pub const NS_DOWNLOAD: u32 = 0x2830_0000;
/// Secure RAM.
pub const SECURE_RAM_START: u32 = 0x3800_0000;
/// The hand-off page between secure stages (end of secure RAM).
pub const HANDOFF_ADDR: u32 = 0x381F_F000;

/// Offset of the secure partition inside the primary slot's payload.
pub const PAYLOAD_SECURE_OFFSET: u32 = 0;
/// Offset of the non-secure application inside the primary slot's payload.
pub const PAYLOAD_NS_OFFSET: u32 = SECURE_MAX;

/// Image header size used by every Castellan image of this board.
pub const IMAGE_HEADER_SIZE: u16 = 0x200;

/// Flash sector (erase unit).
pub const FLASH_SECTOR: u32 = 0x1000;
/// Flash write unit.
pub const FLASH_WRITE: u32 = 4;
/// Bootloader partition.
pub const PART_BOOTLOADER: Partition = Partition::new(0x00_0000, 0x4_0000);
/// Primary slot.
pub const PART_PRIMARY: Partition = Partition::new(0x04_0000, 0x8_0000);
/// Secondary slot.
pub const PART_SECONDARY: Partition = Partition::new(0x0C_0000, 0x8_0000);
/// Swap scratch sector.
pub const PART_SCRATCH: Partition = Partition::new(0x14_0000, 0x1000);
/// Swap journal.
pub const PART_STATUS: Partition = Partition::new(0x14_1000, 0x1000);
/// Key area of trusted storage (the wrapped storage root key).
pub const PART_STORAGE_KEY: Partition = Partition::new(0x14_2000, 0x1000);
/// Trusted storage of the secure services (two banks).
pub const PART_STORAGE: Partition = Partition::new(0x14_3000, 0x4000);
/// Total flash size.
pub const FLASH_SIZE: u32 = 0x14_7000;

/// Host file backing the flash.
pub const FLASH_FILE: &core::ffi::CStr = c"castellan-flash.bin";
/// Host file backing the OTP fuses and the UDS.
pub const OTP_FILE: &core::ffi::CStr = c"castellan-otp.bin";
/// Host file that injects a power cut (tests only; see [`crate::flash`]).
pub const POWERCUT_FILE: &core::ffi::CStr = c"castellan-powercut.bin";
/// Host file with fresh entropy for the random generator's seed (rewritten at each boot).
pub const ENTROPY_FILE: &core::ffi::CStr = c"castellan-entropy.bin";
