//! MD5 of several independent inputs at once (SendMessageBatch bodies).
//!
//! One MD5 stream cannot go faster than its chain of dependent steps (about
//! five cycles a byte), and each SQS send needs the MD5 of its body: in the
//! send-heavy profiles it was the largest single item of the server's own
//! CPU. The ten bodies of a batch are independent, so they go through the
//! 64 steps side by side, one 32-bit lane each: with AVX-512 all ten at
//! once (sixteen lanes, a rotation and each round function one instruction),
//! with AVX2 eight at a time. Ten 1 KiB bodies take 3.4 µs with AVX-512,
//! 6.9 µs with AVX2 and 15.3 µs with `md-5` (release, this project's
//! benchmark machine). `md-5` (RustCrypto) stays the reference: it hashes
//! single inputs and inputs on machines without AVX2, and the tests compare
//! every lane of every path this CPU runs with it.

use md5::{Digest, Md5};

/// The MD5 digests of `inputs`, in order.
pub fn digest_many(inputs: &[&[u8]]) -> Vec<[u8; 16]> {
    digest_with(best(), inputs)
}

/// How a group of inputs is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simd {
    /// `md-5`, one input at a time.
    None,
    /// AVX2: eight lanes.
    Avx2,
    /// AVX-512 (F): sixteen lanes, with rotations and the round functions
    /// in one instruction each.
    Avx512,
}

impl Simd {
    fn lanes(self) -> usize {
        match self {
            Simd::None => 1,
            Simd::Avx2 => AVX2_LANES,
            Simd::Avx512 => AVX512_LANES,
        }
    }
}

/// 32-bit lanes in an AVX2 and an AVX-512 register.
const AVX2_LANES: usize = 8;
const AVX512_LANES: usize = 16;

/// The widest `Simd` this CPU runs.
fn best() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") {
            return Simd::Avx2;
        }
    }
    Simd::None
}

fn digest_with(simd: Simd, inputs: &[&[u8]]) -> Vec<[u8; 16]> {
    let mut out = vec![[0u8; 16]; inputs.len()];
    for (ins, outs) in inputs.chunks(simd.lanes()).zip(out.chunks_mut(simd.lanes())) {
        match simd {
            // SAFETY (both): the CPU has the extension (`best` detected it,
            // or a test did), and `ins` and `outs` have the same length, at
            // most the path's lanes.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 if ins.len() > 1 => unsafe { avx2::digest_lanes(ins, outs) },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 if ins.len() > 1 => unsafe { avx512::digest_lanes(ins, outs) },
            _ => {
                for (i, o) in ins.iter().zip(outs.iter_mut()) {
                    *o = Md5::digest(i).into();
                }
            }
        }
    }
    out
}

/// The additive constant of each step (RFC 1321).
const K: [u32; 64] = {
    // floor(abs(sin(i + 1)) * 2^32), as in RFC 1321 section 3.4.
    [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501, 0x698098d8,
        0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
        0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87,
        0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
        0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039,
        0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
        0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ]
};
const INIT: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

/// One input's blocks: whole blocks straight from the input, then its one or
/// two padded final blocks from `tail`.
struct Lane<'a> {
    input: &'a [u8],
    whole: usize,
    blocks: usize,
    tail: [u8; 128],
}

impl<'a> Lane<'a> {
    fn new(input: &'a [u8]) -> Self {
        let whole = input.len() / 64;
        let rest = &input[whole * 64..];
        // The 0x80 byte and the 8-byte length must fit after the rest.
        let tail_blocks = if rest.len() + 9 <= 64 { 1 } else { 2 };
        let mut tail = [0u8; 128];
        tail[..rest.len()].copy_from_slice(rest);
        tail[rest.len()] = 0x80;
        let end = tail_blocks * 64;
        tail[end - 8..end].copy_from_slice(&((input.len() as u64).wrapping_mul(8)).to_le_bytes());
        Lane { input, whole, blocks: whole + tail_blocks, tail }
    }

    fn block(&self, n: usize) -> &[u8; 64] {
        let b = if n < self.whole { &self.input[n * 64..n * 64 + 64] } else { &self.tail[(n - self.whole) * 64..(n - self.whole) * 64 + 64] };
        b.try_into().expect("a block is 64 bytes")
    }
}

/// RFC 1321's 64 steps, in order, as calls of the macro `$step` (round
/// function, registers, step, message word, rotation), shared by the SIMD
/// paths: each defines `step` for its registers.
macro_rules! md5_steps {
    ($step:ident, $a:ident, $b:ident, $c:ident, $d:ident) => {
        $step!(f, $a, $b, $c, $d, 0, 0, 7);
        $step!(f, $d, $a, $b, $c, 1, 1, 12);
        $step!(f, $c, $d, $a, $b, 2, 2, 17);
        $step!(f, $b, $c, $d, $a, 3, 3, 22);
        $step!(f, $a, $b, $c, $d, 4, 4, 7);
        $step!(f, $d, $a, $b, $c, 5, 5, 12);
        $step!(f, $c, $d, $a, $b, 6, 6, 17);
        $step!(f, $b, $c, $d, $a, 7, 7, 22);
        $step!(f, $a, $b, $c, $d, 8, 8, 7);
        $step!(f, $d, $a, $b, $c, 9, 9, 12);
        $step!(f, $c, $d, $a, $b, 10, 10, 17);
        $step!(f, $b, $c, $d, $a, 11, 11, 22);
        $step!(f, $a, $b, $c, $d, 12, 12, 7);
        $step!(f, $d, $a, $b, $c, 13, 13, 12);
        $step!(f, $c, $d, $a, $b, 14, 14, 17);
        $step!(f, $b, $c, $d, $a, 15, 15, 22);
        $step!(g, $a, $b, $c, $d, 16, 1, 5);
        $step!(g, $d, $a, $b, $c, 17, 6, 9);
        $step!(g, $c, $d, $a, $b, 18, 11, 14);
        $step!(g, $b, $c, $d, $a, 19, 0, 20);
        $step!(g, $a, $b, $c, $d, 20, 5, 5);
        $step!(g, $d, $a, $b, $c, 21, 10, 9);
        $step!(g, $c, $d, $a, $b, 22, 15, 14);
        $step!(g, $b, $c, $d, $a, 23, 4, 20);
        $step!(g, $a, $b, $c, $d, 24, 9, 5);
        $step!(g, $d, $a, $b, $c, 25, 14, 9);
        $step!(g, $c, $d, $a, $b, 26, 3, 14);
        $step!(g, $b, $c, $d, $a, 27, 8, 20);
        $step!(g, $a, $b, $c, $d, 28, 13, 5);
        $step!(g, $d, $a, $b, $c, 29, 2, 9);
        $step!(g, $c, $d, $a, $b, 30, 7, 14);
        $step!(g, $b, $c, $d, $a, 31, 12, 20);
        $step!(h, $a, $b, $c, $d, 32, 5, 4);
        $step!(h, $d, $a, $b, $c, 33, 8, 11);
        $step!(h, $c, $d, $a, $b, 34, 11, 16);
        $step!(h, $b, $c, $d, $a, 35, 14, 23);
        $step!(h, $a, $b, $c, $d, 36, 1, 4);
        $step!(h, $d, $a, $b, $c, 37, 4, 11);
        $step!(h, $c, $d, $a, $b, 38, 7, 16);
        $step!(h, $b, $c, $d, $a, 39, 10, 23);
        $step!(h, $a, $b, $c, $d, 40, 13, 4);
        $step!(h, $d, $a, $b, $c, 41, 0, 11);
        $step!(h, $c, $d, $a, $b, 42, 3, 16);
        $step!(h, $b, $c, $d, $a, 43, 6, 23);
        $step!(h, $a, $b, $c, $d, 44, 9, 4);
        $step!(h, $d, $a, $b, $c, 45, 12, 11);
        $step!(h, $c, $d, $a, $b, 46, 15, 16);
        $step!(h, $b, $c, $d, $a, 47, 2, 23);
        $step!(i, $a, $b, $c, $d, 48, 0, 6);
        $step!(i, $d, $a, $b, $c, 49, 7, 10);
        $step!(i, $c, $d, $a, $b, 50, 14, 15);
        $step!(i, $b, $c, $d, $a, 51, 5, 21);
        $step!(i, $a, $b, $c, $d, 52, 12, 6);
        $step!(i, $d, $a, $b, $c, 53, 3, 10);
        $step!(i, $c, $d, $a, $b, 54, 10, 15);
        $step!(i, $b, $c, $d, $a, 55, 1, 21);
        $step!(i, $a, $b, $c, $d, 56, 8, 6);
        $step!(i, $d, $a, $b, $c, 57, 15, 10);
        $step!(i, $c, $d, $a, $b, 58, 6, 15);
        $step!(i, $b, $c, $d, $a, 59, 13, 21);
        $step!(i, $a, $b, $c, $d, 60, 4, 6);
        $step!(i, $d, $a, $b, $c, 61, 11, 10);
        $step!(i, $c, $d, $a, $b, 62, 2, 15);
        $step!(i, $b, $c, $d, $a, 63, 9, 21);
    };
}

/// The number of blocks of each lane (0 for lanes without an input) and
/// the most of any.
fn lane_blocks<const N: usize>(lanes: &[Lane<'_>]) -> ([i32; N], usize) {
    let mut blocks = [0i32; N];
    for (b, l) in blocks.iter_mut().zip(lanes) {
        *b = l.blocks as i32;
    }
    (blocks, lanes.iter().map(|l| l.blocks).max().unwrap_or(0))
}

/// Block `n` of every lane that has one, transposed: `w[j][lane]` is word `j`
/// of that lane's block (lanes without one keep what they had; their state
/// is not updated).
fn transpose_block<const N: usize>(lanes: &[Lane<'_>], n: usize, w: &mut [[u32; N]; 16]) {
    for (lane, l) in lanes.iter().enumerate() {
        if n < l.blocks {
            let b = l.block(n);
            for (row, bytes) in w.iter_mut().zip(b.chunks_exact(4)) {
                row[lane] = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
        }
    }
}

/// The digests of the lanes from the four state rows (`words[k][lane]`).
fn digests<const N: usize>(words: &[[u32; N]; 4], outs: &mut [[u8; 16]]) {
    for (lane, o) in outs.iter_mut().enumerate() {
        for (k, row) in words.iter().enumerate() {
            o[4 * k..4 * k + 4].copy_from_slice(&row[lane].to_le_bytes());
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{digests, lane_blocks, transpose_block, Lane, INIT, K};
    use std::arch::x86_64::*;

    const LANES: usize = super::AVX2_LANES;

    /// Hashes `ins` (2 to 8 inputs) into `outs`, one AVX2 lane each.
    ///
    /// # Safety
    /// The CPU must support AVX2; `ins.len() == outs.len() <= LANES`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn digest_lanes(ins: &[&[u8]], outs: &mut [[u8; 16]]) {
        let lanes: Vec<Lane<'_>> = ins.iter().map(|i| Lane::new(i)).collect();
        let (blocks, most) = lane_blocks::<LANES>(&lanes);
        let blocks_v = _mm256_loadu_si256(blocks.as_ptr().cast());
        let mut state = INIT.map(|v| _mm256_set1_epi32(v as i32));
        let mut w = [[0u32; LANES]; 16];
        for n in 0..most {
            transpose_block(&lanes, n, &mut w);
            let m: [__m256i; 16] = std::array::from_fn(|j| _mm256_loadu_si256(w[j].as_ptr().cast()));
            let next = compress(state, &m);
            // Lanes whose input has no block `n` keep their state.
            let live = _mm256_cmpgt_epi32(blocks_v, _mm256_set1_epi32(n as i32));
            for (s, x) in state.iter_mut().zip(next) {
                *s = _mm256_blendv_epi8(*s, x, live);
            }
        }
        let mut words = [[0u32; LANES]; 4];
        for (row, s) in words.iter_mut().zip(state) {
            _mm256_storeu_si256(row.as_mut_ptr().cast(), s);
        }
        digests(&words, outs);
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn compress(state: [__m256i; 4], m: &[__m256i; 16]) -> [__m256i; 4] {
        let [mut a, mut b, mut c, mut d] = state;
        // One MD5 step on eight lanes: a = b + ((a + fn(b, c, d) + K[i] + M[w]) <<< s).
        macro_rules! step {
            ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $i:literal, $w:literal, $s:literal) => {
                let sum = _mm256_add_epi32(_mm256_add_epi32($a, $f($b, $c, $d)), _mm256_add_epi32(_mm256_set1_epi32(K[$i] as i32), m[$w]));
                $a = _mm256_add_epi32($b, _mm256_or_si256(_mm256_slli_epi32::<$s>(sum), _mm256_srli_epi32::<{ 32 - $s }>(sum)));
            };
        }
        md5_steps!(step, a, b, c, d);
        [
            _mm256_add_epi32(state[0], a),
            _mm256_add_epi32(state[1], b),
            _mm256_add_epi32(state[2], c),
            _mm256_add_epi32(state[3], d),
        ]
    }

    /// F = (b & c) | (!b & d)
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn f(b: __m256i, c: __m256i, d: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_and_si256(b, c), _mm256_andnot_si256(b, d))
    }

    /// G = (b & d) | (c & !d)
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn g(b: __m256i, c: __m256i, d: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_and_si256(b, d), _mm256_andnot_si256(d, c))
    }

    /// H = b ^ c ^ d
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn h(b: __m256i, c: __m256i, d: __m256i) -> __m256i {
        _mm256_xor_si256(_mm256_xor_si256(b, c), d)
    }

    /// I = c ^ (b | !d)
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn i(b: __m256i, c: __m256i, d: __m256i) -> __m256i {
        _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, _mm256_set1_epi32(-1))))
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{digests, lane_blocks, transpose_block, Lane, INIT, K};
    use std::arch::x86_64::*;

    const LANES: usize = super::AVX512_LANES;

    /// Hashes `ins` (2 to 16 inputs) into `outs`, one AVX-512 lane each.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F; `ins.len() == outs.len() <= LANES`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn digest_lanes(ins: &[&[u8]], outs: &mut [[u8; 16]]) {
        let lanes: Vec<Lane<'_>> = ins.iter().map(|i| Lane::new(i)).collect();
        let (blocks, most) = lane_blocks::<LANES>(&lanes);
        let blocks_v = _mm512_loadu_si512(blocks.as_ptr().cast());
        let mut state = INIT.map(|v| _mm512_set1_epi32(v as i32));
        let mut w = [[0u32; LANES]; 16];
        for n in 0..most {
            transpose_block(&lanes, n, &mut w);
            let m: [__m512i; 16] = std::array::from_fn(|j| _mm512_loadu_si512(w[j].as_ptr().cast()));
            let next = compress(state, &m);
            // Lanes whose input has no block `n` keep their state.
            let live = _mm512_cmpgt_epi32_mask(blocks_v, _mm512_set1_epi32(n as i32));
            for (s, x) in state.iter_mut().zip(next) {
                *s = _mm512_mask_mov_epi32(*s, live, x);
            }
        }
        let mut words = [[0u32; LANES]; 4];
        for (row, s) in words.iter_mut().zip(state) {
            _mm512_storeu_si512(row.as_mut_ptr().cast(), s);
        }
        digests(&words, outs);
    }

    /// The round functions as `vpternlogd` truth tables over (b, c, d),
    /// named as `md5_steps!` calls them: f = b ? c : d, g = d ? b : c,
    /// h = b ^ c ^ d, i = c ^ (b | !d).
    #[allow(non_upper_case_globals)]
    mod table {
        pub const f: i32 = 0xCA;
        pub const g: i32 = 0xE4;
        pub const h: i32 = 0x96;
        pub const i: i32 = 0x39;
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn compress(state: [__m512i; 4], m: &[__m512i; 16]) -> [__m512i; 4] {
        let [mut a, mut b, mut c, mut d] = state;
        // One MD5 step on sixteen lanes: a = b + ((a + fn(b, c, d) + K[i] + M[w]) <<< s).
        macro_rules! step {
            ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $i:literal, $w:literal, $s:literal) => {
                let fx = _mm512_ternarylogic_epi32::<{ table::$f }>($b, $c, $d);
                let sum = _mm512_add_epi32(_mm512_add_epi32($a, fx), _mm512_add_epi32(_mm512_set1_epi32(K[$i] as i32), m[$w]));
                $a = _mm512_add_epi32($b, _mm512_rol_epi32::<$s>(sum));
            };
        }
        md5_steps!(step, a, b, c, d);
        [
            _mm512_add_epi32(state[0], a),
            _mm512_add_epi32(state[1], b),
            _mm512_add_epi32(state[2], c),
            _mm512_add_epi32(state[3], d),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(inputs: &[Vec<u8>]) -> Vec<[u8; 16]> {
        inputs.iter().map(|i| Md5::digest(i).into()).collect()
    }

    /// Every path this CPU can run, the widest included.
    fn paths() -> Vec<Simd> {
        let mut v = vec![Simd::None];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                v.push(Simd::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                v.push(Simd::Avx512);
            }
        }
        assert!(v.contains(&best()));
        v
    }

    #[test]
    fn every_padding_boundary_matches_the_reference() {
        // Lengths around one and two padded final blocks, mixed in one call
        // so that lanes run out of blocks at different times.
        let lens = [0usize, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 1024, 4096, 262_144];
        let inputs: Vec<Vec<u8>> = lens.iter().map(|&n| (0..n).map(|i| (i * 31 + n) as u8).collect()).collect();
        let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        for simd in paths() {
            assert_eq!(digest_with(simd, &refs), reference(&inputs), "{simd:?}");
            assert_eq!(hex::encode(digest_with(simd, &[b"hello", b""])[0]), "5d41402abc4b2a76b9719d911017c592", "{simd:?}");
        }
        assert_eq!(digest_many(&refs), reference(&inputs));
    }

    #[test]
    fn the_simd_path_is_the_one_tested_here() {
        // The machines this runs on have AVX2 at least; without it the tests
        // here would check only the fallback. The AVX-512 path is checked
        // where the CPU has it (the benchmark machine does).
        #[cfg(target_arch = "x86_64")]
        assert_ne!(best(), Simd::None);
        eprintln!("MD5 paths checked here: {:?}", paths());
    }

    proptest! {
        #[test]
        fn any_inputs_match_the_reference(inputs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 0..20)) {
            let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            for simd in paths() {
                prop_assert_eq!(digest_with(simd, &refs), reference(&inputs), "{:?}", simd);
            }
        }
    }
}
