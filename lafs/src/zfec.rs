//! Erasure coding as zfec (and so Tahoe-LAFS) does it: a systematic Reed-Solomon code over
//! GF(2^8) with the polynomial x^8+x^4+x^3+x^2+1, built from a Vandermonde matrix.
//!
//! Written from the description of the code (Rizzo's `fec.c`, which zfec wraps), not copied from
//! any implementation; the tests prove it byte for byte against Python zfec's output.
//!
//! zfec's encoding matrix: an n x k Vandermonde matrix whose first row is `[1, 0, ..., 0]` (the
//! point 0) and whose row `r + 1` is `alpha^(r * c)` for column `c` (the point `alpha^r`), made
//! systematic by multiplying it on the right by the inverse of its top k x k square. Blocks
//! `0..k` are therefore the input pieces themselves and blocks `k..n` are the parity. Decoding
//! inverts the k rows of the blocks at hand.

use std::sync::OnceLock;

/// Parameters zfec refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZfecError {
    /// k and n out of range.
    #[error("zfec needs 1 <= k <= n <= 256, got k={k}, n={n}")]
    BadParameters {
        /// Pieces needed.
        k: usize,
        /// Blocks made.
        n: usize,
    },
    /// Blocks to decode of the wrong number, with repeated or impossible share numbers, or of
    /// unequal sizes.
    #[error("zfec decoding needs exactly k={k} blocks of equal size with distinct share numbers below n={n}")]
    BadBlocks {
        /// Blocks needed.
        k: usize,
        /// Blocks made.
        n: usize,
    },
    /// Input pieces of the wrong number or unequal sizes.
    #[error("zfec needs exactly k={k} input pieces of equal size")]
    BadInput {
        /// Pieces needed.
        k: usize,
    },
}

/// The field's tables: `exp` (doubled, so a sum of two logs needs no reduction), `log` and the
/// full 256 x 256 product table that the inner loop indexes.
struct Field {
    exp: [u8; 510],
    log: [u16; 256],
    mul: Vec<[u8; 256]>,
}

fn field() -> &'static Field {
    static FIELD: OnceLock<Field> = OnceLock::new();
    FIELD.get_or_init(|| {
        let mut exp = [0u8; 510];
        let mut log = [0u16; 256];
        let mut x: u16 = 1;
        for (i, slot) in exp.iter_mut().take(255).enumerate() {
            *slot = x as u8;
            log[x as usize] = i as u16;
            x <<= 1;
            if x & 0x100 != 0 {
                x ^= 0x11d;
            }
        }
        for i in 255..510 {
            exp[i] = exp[i - 255];
        }
        let mut mul = vec![[0u8; 256]; 256];
        for a in 1..256 {
            for b in 1..256 {
                mul[a][b] = exp[(log[a] + log[b]) as usize];
            }
        }
        Field { exp, log, mul }
    })
}

fn mul(a: u8, b: u8) -> u8 {
    field().mul[a as usize][b as usize]
}

fn inverse(a: u8) -> u8 {
    debug_assert!(a != 0);
    let f = field();
    f.exp[(255 - f.log[a as usize]) as usize % 255]
}

/// `dst[i] ^= c * src[i]` over the field, for every byte of `dst` (`src` is at least as long).
fn add_product(dst: &mut [u8], src: &[u8], c: u8) {
    assert!(src.len() >= dst.len());
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above) and `src` is at least as long as `dst`.
        unsafe { simd::add_product_avx2(dst, src, c) };
        return;
    }
    add_product_scalar(dst, src, c);
}

fn add_product_scalar(dst: &mut [u8], src: &[u8], c: u8) {
    let table = &field().mul[c as usize];
    for (d, &s) in dst.iter_mut().zip(src) {
        *d ^= table[s as usize];
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! Multiplication by a constant is linear, so `c * x = c * (x & 15) ^ c * (x & 240)`: two
    //! 16-entry tables that a byte shuffle looks up 32 bytes at a time.
    use std::arch::x86_64::*;

    use super::{add_product_scalar, mul};

    /// # Safety
    /// The CPU must support AVX2 and `src` must be at least as long as `dst`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn add_product_avx2(dst: &mut [u8], src: &[u8], c: u8) {
        let mut low = [0u8; 16];
        let mut high = [0u8; 16];
        for x in 0..16u8 {
            low[x as usize] = mul(c, x);
            high[x as usize] = mul(c, x << 4);
        }
        let low = _mm256_broadcastsi128_si256(_mm_loadu_si128(low.as_ptr().cast()));
        let high = _mm256_broadcastsi128_si256(_mm_loadu_si128(high.as_ptr().cast()));
        let nibble = _mm256_set1_epi8(0x0f);
        let whole = dst.len() / 32 * 32;
        let mut i = 0;
        while i < whole {
            let s = _mm256_loadu_si256(src.as_ptr().add(i).cast());
            let lo = _mm256_shuffle_epi8(low, _mm256_and_si256(s, nibble));
            let hi = _mm256_shuffle_epi8(high, _mm256_and_si256(_mm256_srli_epi64(s, 4), nibble));
            let d = _mm256_loadu_si256(dst.as_ptr().add(i).cast());
            let sum = _mm256_xor_si256(d, _mm256_xor_si256(lo, hi));
            _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), sum);
            i += 32;
        }
        add_product_scalar(&mut dst[whole..], &src[whole..], c);
    }
}

/// Inverts a k x k matrix over GF(2^8) (Gauss-Jordan). The Vandermonde square zfec inverts has
/// distinct points, so it is always invertible; the inverse is unique, so any method gives the
/// same matrix as zfec's specialised one.
fn invert(matrix: &mut [u8], k: usize) {
    let mut inv = vec![0u8; k * k];
    for i in 0..k {
        inv[i * k + i] = 1;
    }
    for col in 0..k {
        let pivot = (col..k)
            .find(|&r| matrix[r * k + col] != 0)
            .expect("a Vandermonde square with distinct points is invertible");
        if pivot != col {
            for c in 0..k {
                matrix.swap(pivot * k + c, col * k + c);
                inv.swap(pivot * k + c, col * k + c);
            }
        }
        let scale = inverse(matrix[col * k + col]);
        for c in 0..k {
            matrix[col * k + c] = mul(matrix[col * k + c], scale);
            inv[col * k + c] = mul(inv[col * k + c], scale);
        }
        for r in 0..k {
            let factor = matrix[r * k + col];
            if r == col || factor == 0 {
                continue;
            }
            for c in 0..k {
                matrix[r * k + c] ^= mul(factor, matrix[col * k + c]);
                inv[r * k + c] ^= mul(factor, inv[col * k + c]);
            }
        }
    }
    matrix.copy_from_slice(&inv);
}

/// A zfec encoder for fixed (k, n).
#[derive(Debug, Clone)]
pub struct Encoder {
    k: usize,
    n: usize,
    /// Rows k..n of the systematic matrix, `(n - k) * k` coefficients.
    parity_rows: Vec<u8>,
}

impl Encoder {
    /// An encoder making `n` blocks of which any `k` recover the input (1 <= k <= n <= 256).
    pub fn new(k: usize, n: usize) -> Result<Self, ZfecError> {
        if k == 0 || n == 0 || k > n || n > 256 {
            return Err(ZfecError::BadParameters { k, n });
        }
        let f = field();
        let mut vandermonde = vec![0u8; n * k];
        vandermonde[0] = 1;
        for row in 0..n - 1 {
            for col in 0..k {
                vandermonde[(row + 1) * k + col] = f.exp[(row * col) % 255];
            }
        }
        let (top, bottom) = vandermonde.split_at_mut(k * k);
        invert(top, k);
        let mut parity_rows = vec![0u8; (n - k) * k];
        for r in 0..n - k {
            for c in 0..k {
                let mut acc = 0u8;
                for j in 0..k {
                    acc ^= mul(bottom[r * k + j], top[j * k + c]);
                }
                parity_rows[r * k + c] = acc;
            }
        }
        Ok(Encoder { k, n, parity_rows })
    }

    /// Pieces needed to recover the input.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Blocks made.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Encodes `k` equal-sized pieces into all `n` blocks (blocks `0..k` are the pieces).
    pub fn encode(&self, pieces: &[&[u8]]) -> Result<Vec<Vec<u8>>, ZfecError> {
        let size = self.check_input(pieces)?;
        let mut blocks: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        for shnum in self.k..self.n {
            let mut block = vec![0u8; size];
            self.encode_parity_into(pieces, shnum, &mut block);
            blocks.push(block);
        }
        Ok(blocks)
    }

    /// Writes parity block `shnum` (k <= shnum < n) of `pieces` into `out` (of the pieces' size).
    pub fn encode_parity_into(&self, pieces: &[&[u8]], shnum: usize, out: &mut [u8]) {
        assert!(shnum >= self.k && shnum < self.n, "not a parity block");
        out.fill(0);
        let row = &self.parity_rows[(shnum - self.k) * self.k..][..self.k];
        for (&coefficient, piece) in row.iter().zip(pieces) {
            if coefficient != 0 {
                add_product(out, piece, coefficient);
            }
        }
    }

    /// Recovers the k input pieces from any k blocks, given as `(share number, block)` with
    /// distinct share numbers below n and equal sizes.
    pub fn decode(&self, blocks: &[(usize, &[u8])]) -> Result<Vec<Vec<u8>>, ZfecError> {
        let k = self.k;
        let size = blocks.first().map_or(0, |b| b.1.len());
        let mut seen = vec![false; self.n];
        for &(shnum, block) in blocks {
            if shnum >= self.n || seen[shnum] || block.len() != size {
                return Err(ZfecError::BadBlocks { k, n: self.n });
            }
            seen[shnum] = true;
        }
        if blocks.len() != k {
            return Err(ZfecError::BadBlocks { k, n: self.n });
        }
        // The rows of the systematic matrix that made these blocks, inverted, map them back.
        let mut matrix = vec![0u8; k * k];
        for (r, &(shnum, _)) in blocks.iter().enumerate() {
            if shnum < k {
                matrix[r * k + shnum] = 1;
            } else {
                matrix[r * k..][..k].copy_from_slice(&self.parity_rows[(shnum - k) * k..][..k]);
            }
        }
        invert(&mut matrix, k);
        Ok((0..k)
            .map(|j| {
                let mut piece = vec![0u8; size];
                for (i, &(_, block)) in blocks.iter().enumerate() {
                    let c = matrix[j * k + i];
                    if c != 0 {
                        add_product(&mut piece, block, c);
                    }
                }
                piece
            })
            .collect())
    }

    fn check_input(&self, pieces: &[&[u8]]) -> Result<usize, ZfecError> {
        let size = pieces.first().map_or(0, |p| p.len());
        if pieces.len() != self.k || pieces.iter().any(|p| p.len() != size) {
            return Err(ZfecError::BadInput { k: self.k });
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_impossible_parameters() {
        assert!(Encoder::new(0, 1).is_err());
        assert!(Encoder::new(3, 2).is_err());
        assert!(Encoder::new(1, 257).is_err());
        assert!(Encoder::new(256, 256).is_ok());
    }

    #[test]
    fn systematic_blocks_are_the_pieces() {
        let enc = Encoder::new(3, 5).unwrap();
        let pieces: [&[u8]; 3] = [b"abc", b"def", b"ghi"];
        let blocks = enc.encode(&pieces).unwrap();
        assert_eq!(blocks.len(), 5);
        assert_eq!(blocks[0], b"abc");
        assert_eq!(blocks[2], b"ghi");
    }

    #[test]
    fn one_of_n_repeats_the_piece() {
        // With k = 1 every row of the systematic matrix is [1].
        let enc = Encoder::new(1, 3).unwrap();
        let blocks = enc.encode(&[b"xyz"]).unwrap();
        assert!(blocks.iter().all(|b| b == b"xyz"));
    }

    #[test]
    fn vector_and_byte_by_byte_products_agree() {
        for c in 0..=255u8 {
            for len in [0, 1, 31, 32, 33, 100] {
                let src: Vec<u8> = (0..len).map(|i| (i * 37 + usize::from(c)) as u8).collect();
                let mut fast: Vec<u8> = (0..len).map(|i| (i * 11) as u8).collect();
                let mut slow = fast.clone();
                add_product(&mut fast, &src, c);
                add_product_scalar(&mut slow, &src, c);
                assert_eq!(fast, slow, "c={c} len={len}");
            }
        }
    }

    #[test]
    fn any_k_blocks_give_back_the_pieces() {
        for (k, n) in [(1, 1), (1, 3), (2, 3), (3, 10), (5, 7), (20, 40)] {
            let enc = Encoder::new(k, n).unwrap();
            let pieces: Vec<Vec<u8>> = (0..k)
                .map(|j| (0..50).map(|i| (i * 13 + j * 7 + 1) as u8).collect())
                .collect();
            let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            let blocks = enc.encode(&refs).unwrap();
            // The last k blocks, the first k, and every other block from the end.
            let choices: [Vec<usize>; 3] = [
                (n - k..n).rev().collect(),
                (0..k).collect(),
                (0..n)
                    .rev()
                    .step_by(2)
                    .chain((0..n).rev().skip(1).step_by(2))
                    .take(k)
                    .collect(),
            ];
            for chosen in choices {
                let given: Vec<(usize, &[u8])> =
                    chosen.iter().map(|&s| (s, blocks[s].as_slice())).collect();
                assert_eq!(
                    enc.decode(&given).unwrap(),
                    pieces,
                    "k={k} n={n} {chosen:?}"
                );
            }
        }
    }

    #[test]
    fn refuses_repeated_or_missing_blocks() {
        let enc = Encoder::new(2, 4).unwrap();
        assert!(enc.decode(&[(1, b"ab"), (1, b"ab")]).is_err());
        assert!(enc.decode(&[(1, b"ab")]).is_err());
        assert!(enc.decode(&[(1, b"ab"), (4, b"ab")]).is_err());
        assert!(enc.decode(&[(1, b"ab"), (2, b"a")]).is_err());
    }

    #[test]
    fn refuses_unequal_pieces() {
        let enc = Encoder::new(2, 3).unwrap();
        assert!(enc.encode(&[b"ab", b"c"]).is_err());
        assert!(enc.encode(&[b"ab"]).is_err());
    }
}
