//! The flash rules of `SimFlash`, for every write size (1, 4, 8, 16) and erased value
//! (0xFF, 0x00): erase before write, alignment, bounds, and that refusals change nothing.

mod common;

use castellan_hal::{Flash, HalError, NorFlash, ReadNorFlash};
use castellan_sim::{FlashConfig, SimError, SimFlash};
use common::{SECTOR, flashes, pattern};

const SIZE: u32 = 16 * 1024;

#[test]
fn matrix_covers_eight_geometries() {
    let all: Vec<_> = FlashConfig::matrix(SIZE, SECTOR).collect();
    assert_eq!(all.len(), 8);
    for w in [1, 4, 8, 16] {
        for e in [0xFF, 0x00] {
            assert!(all.contains(&FlashConfig::new(SIZE, SECTOR, w, e)));
        }
    }
}

#[test]
fn fresh_flash_reads_erased_and_reports_its_geometry() {
    for mut f in flashes(SIZE) {
        let c = f.config();
        assert_eq!(f.capacity(), SIZE as usize);
        assert_eq!(f.write_size(), c.write_size as usize);
        assert_eq!(f.erase_size(), SECTOR as usize);
        assert_eq!(f.erased_value(), c.erased_value);
        let mut buf = vec![0x42; 100];
        f.read(10, &mut buf).unwrap();
        assert!(buf.iter().all(|b| *b == c.erased_value));
        assert!(f.is_erased(0, SIZE).unwrap());
    }
}

#[test]
fn write_then_read_back() {
    for mut f in flashes(SIZE) {
        let ws = f.write_size() as u32;
        let data = pattern(4 * ws as usize, 3);
        f.write(2 * ws, &data).unwrap();
        let mut back = vec![0; data.len()];
        f.read(2 * ws, &mut back).unwrap();
        assert_eq!(back, data);
        assert!(!f.is_erased(0, SIZE).unwrap());
        // Neighbours untouched.
        let mut before = vec![0; ws as usize];
        f.read(ws, &mut before).unwrap();
        assert!(before.iter().all(|b| *b == f.erased_value()));
    }
}

#[test]
fn write_to_programmed_unit_refused_until_erased() {
    for mut f in flashes(SIZE) {
        let ws = f.write_size();
        let data = pattern(ws, 1);
        f.write(SECTOR, &data).unwrap();
        assert_eq!(f.write(SECTOR, &pattern(ws, 9)), Err(HalError::NotErased));
        // A write overlapping one programmed unit is refused as a whole: nothing written.
        let wide = pattern(3 * ws, 5);
        let start = SECTOR - ws as u32;
        assert_eq!(f.write(start, &wide), Err(HalError::NotErased));
        assert!(f.is_erased(start, ws as u32).unwrap());
        f.erase(SECTOR, 2 * SECTOR).unwrap();
        f.write(SECTOR, &pattern(ws, 9)).unwrap();
    }
}

#[test]
fn writing_erased_value_still_programs_the_unit() {
    // ECC flash and the embedded-storage contract: one write per unit per erase, whatever
    // the data. A unit written with erased-value bytes reads erased but cannot be written again.
    for mut f in flashes(SIZE) {
        let ws = f.write_size();
        f.write(0, &vec![f.erased_value(); ws]).unwrap();
        assert!(f.is_erased(0, ws as u32).unwrap());
        assert!(f.is_unit_written(0));
        assert_eq!(f.write(0, &pattern(ws, 0)), Err(HalError::NotErased));
    }
}

#[test]
fn misaligned_write_refused() {
    for mut f in flashes(SIZE) {
        let ws = f.write_size() as u32;
        if ws == 1 {
            continue;
        }
        assert_eq!(
            f.write(1, &pattern(ws as usize, 0)),
            Err(HalError::NotAligned)
        );
        assert_eq!(
            f.write(ws / 2, &pattern(ws as usize, 0)),
            Err(HalError::NotAligned)
        );
        assert_eq!(
            f.write(0, &pattern(ws as usize - 1, 0)),
            Err(HalError::NotAligned)
        );
        assert_eq!(
            f.write(0, &pattern(ws as usize + 1, 0)),
            Err(HalError::NotAligned)
        );
        assert!(
            f.is_erased(0, SIZE).unwrap(),
            "a refused write changed the flash"
        );
        assert_eq!(f.rail().ops(), 0, "a refused write took an operation index");
    }
}

#[test]
fn misaligned_erase_refused() {
    for mut f in flashes(SIZE) {
        let ws = f.write_size() as u32;
        f.write(0, &pattern(ws as usize, 0)).unwrap();
        assert_eq!(f.erase(0, SECTOR / 2), Err(HalError::NotAligned));
        assert_eq!(f.erase(ws, SECTOR), Err(HalError::NotAligned));
        assert_eq!(f.erase(1, SECTOR + 1), Err(HalError::NotAligned));
        assert!(f.is_unit_written(0), "a refused erase erased something");
    }
}

#[test]
fn out_of_bounds_refused() {
    for mut f in flashes(SIZE) {
        let ws = f.write_size();
        let mut buf = [0u8; 16];
        assert_eq!(f.read(SIZE - 8, &mut buf), Err(HalError::OutOfBounds));
        assert_eq!(f.read(u32::MAX, &mut buf), Err(HalError::OutOfBounds));
        assert_eq!(f.write(SIZE, &pattern(ws, 0)), Err(HalError::OutOfBounds));
        let end = SIZE - ws as u32;
        assert_eq!(
            f.write(end, &pattern(2 * ws, 0)),
            Err(HalError::OutOfBounds)
        );
        assert_eq!(f.erase(0, SIZE + SECTOR), Err(HalError::OutOfBounds));
        assert_eq!(f.erase(2 * SECTOR, SECTOR), Err(HalError::OutOfBounds));
        // The last unit and the whole flash are fine.
        f.write(end, &pattern(ws, 0)).unwrap();
        f.erase(0, SIZE).unwrap();
    }
}

#[test]
fn erase_restores_erased_value_on_the_sectors_only() {
    for mut f in flashes(SIZE) {
        let e = f.erased_value();
        let data = pattern(3 * SECTOR as usize, 7);
        f.write(0, &data).unwrap();
        f.erase(SECTOR, 2 * SECTOR).unwrap();
        let c = f.contents();
        assert_eq!(&c[..SECTOR as usize], &data[..SECTOR as usize]);
        assert!(
            c[SECTOR as usize..2 * SECTOR as usize]
                .iter()
                .all(|b| *b == e)
        );
        assert_eq!(
            &c[2 * SECTOR as usize..3 * SECTOR as usize],
            &data[2 * SECTOR as usize..]
        );
        assert_eq!(f.erase_counts()[1], 1);
        assert_eq!(f.erase_counts()[0], 0);
    }
}

#[test]
fn empty_operations_do_nothing() {
    for mut f in flashes(SIZE) {
        f.write(0, &[]).unwrap();
        f.erase(SECTOR, SECTOR).unwrap();
        assert_eq!(f.rail().ops(), 0);
        assert_eq!(f.stats().writes, 0);
    }
}

#[test]
fn stats_count_operations() {
    let mut f = SimFlash::new(FlashConfig::new(SIZE, SECTOR, 4, 0xFF)).unwrap();
    f.write(0, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    f.erase(0, 3 * SECTOR).unwrap();
    let mut b = [0; 4];
    f.read(0, &mut b).unwrap();
    let s = f.stats();
    assert_eq!(
        (s.writes, s.bytes_written, s.sector_erases, s.reads),
        (1, 8, 3, 1)
    );
    assert_eq!(f.rail().ops(), 4, "1 write + 3 sector erases");
}

#[test]
fn image_load_marks_non_erased_units_programmed() {
    let c = FlashConfig::new(SIZE, SECTOR, 8, 0x00);
    let mut image = vec![0u8; SIZE as usize];
    image[9] = 0x10; // unit 1 (bytes 8..16)
    let mut f = SimFlash::from_image(c, image).unwrap();
    assert!(!f.is_unit_written(0));
    assert!(f.is_unit_written(1));
    assert_eq!(f.write(8, &[1; 8]), Err(HalError::NotErased));
    f.write(0, &[1; 8]).unwrap();
    let short = SimFlash::from_image(c, vec![0; 10]);
    assert!(matches!(short, Err(SimError::InvalidConfig(_))));
}

#[test]
fn invalid_geometries_refused() {
    let bad = [
        FlashConfig::new(SIZE, 1000, 4, 0xFF), // sector not a power of two
        FlashConfig::new(SIZE, SECTOR, 3, 0xFF), // write size not a power of two
        FlashConfig::new(SIZE, 16, 32, 0xFF),  // write size above sector size
        FlashConfig::new(SIZE + 1, SECTOR, 4, 0xFF),
        FlashConfig::new(0, SECTOR, 4, 0xFF),
        FlashConfig::new(SIZE, SECTOR, 4, 0xAA),
    ];
    for c in bad {
        assert!(
            matches!(SimFlash::new(c), Err(SimError::InvalidConfig(_))),
            "{c:?} accepted"
        );
    }
}
