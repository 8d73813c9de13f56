//! Robust location and scale: the median and the median absolute deviation (MAD), which a
//! few compromised devices cannot drag the way they drag a mean and a standard deviation
//! (the MAD's breakdown point is 50 %: up to half a cohort may lie before the baseline moves
//! without bound).

/// The MAD of a normal distribution times this is its standard deviation.
pub const MAD_TO_SIGMA: f64 = 1.4826;

/// The median of `values` (`None` when there are none or one is not a number). Sorts a copy.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Median and scaled MAD (comparable to a standard deviation) of `values`.
pub fn median_and_mad(values: &[f64]) -> Option<(f64, f64)> {
    let m = median(values)?;
    let deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    Some((m, median(&deviations)? * MAD_TO_SIGMA))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn one_liar_in_a_cohort_does_not_move_the_baseline() {
        let mut cohort = vec![10.0, 11.0, 9.0, 10.5, 9.5, 10.0, 10.2, 9.8];
        let (m, s) = median_and_mad(&cohort).unwrap();
        cohort.push(10_000.0);
        let (m2, s2) = median_and_mad(&cohort).unwrap();
        assert!(
            (m - m2).abs() < 0.3 && (s - s2).abs() < 0.5,
            "{m} {s} / {m2} {s2}"
        );
    }
}
