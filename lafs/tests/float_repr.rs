//! Floats in directory metadata are written as Python's `repr` (known answers from
//! `data/make_float_reprs.py`).

use tahoe_jobs_lafs::dirnode::python_float_repr;

#[test]
fn float_repr_equals_pythons() {
    let text = include_str!("data/float-reprs.txt");
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (bits, expected) = line.split_once(' ').unwrap();
        let value = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        assert_eq!(python_float_repr(value), expected, "bits {bits}");
        checked += 1;
    }
    assert!(checked > 3000);
}
