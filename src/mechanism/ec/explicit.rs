//! Explicit curve parameters (X9.62 `ECParameters`) in `CKA_EC_PARAMS`: accepted only when
//! they describe a supported named curve, compared by value (p, a, b, G, n, cofactor) so
//! that any valid encoding of them matches: with or without the seed and the cofactor, the
//! generator compressed or not, integers with or without leading zeros.

use crate::crypto::ec::Curve;
use der::asn1::{Any, ObjectIdentifier, UintRef};
use der::Decode;
use once_cell::sync::Lazy;

/// The explicit form OpenSSL writes (`openssl ecparam -name ... -param_enc explicit`).
const CANONICAL: &[(Curve, &str)] = &[
    (
        Curve::P256,
        "3081f7020101302c06072a8648ce3d0101022100ffffffff00000001000000000000000000000000fff\
         fffffffffffffffffffff305b0420ffffffff00000001000000000000000000000000ffffffffffffff\
         fffffffffc04205ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b03150\
         0c49d360886e704936a6678e1139d26b7819f7e900441046b17d1f2e12c4247f8bce6e563a440f27703\
         7d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406\
         837bf51f5022100ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551020101",
    ),
    (
        Curve::P384,
        "30820157020101303c06072a8648ce3d0101023100ffffffffffffffffffffffffffffffffffffffff\
         fffffffffffffffffffffffeffffffff0000000000000000ffffffff307b0430ffffffffffffffffff\
         fffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffc0430\
         b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a\
         85c8edd3ec2aef031500a335926aa319a27a1d00896a6773a4827acdac73046104aa87ca22be8b0537\
         8eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab736\
         17de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a43\
         1d7c90ea0e5f023100ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf\
         581a0db248b0a77aecec196accc52973020101",
    ),
    (
        Curve::P521,
        "308201c3020101304d06072a8648ce3d0101024201ffffffffffffffffffffffffffffffffffffffffff\
         ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
         ffff30819f044201ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
         fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffc04420051953eb9618e1c9a\
         1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf0735\
         73df883d2c34f1ef451fd46b503f00031500d09e8800291cb85396cc6717393284aaa0da64ba04818504\
         00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928\
         fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66011839296a789a3bc0045c8a5fb42c7d1bd9\
         98f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be\
         94769fd16650024201fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa\
         51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409020101",
    ),
];

const PRIME_FIELD: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.1.1");

/// The values that make a curve, integers without leading zeros.
#[derive(PartialEq, Eq)]
struct Domain {
    p: Vec<u8>,
    a: Vec<u8>,
    b: Vec<u8>,
    /// The generator's x-coordinate and, when the encoding has it, the parity of y
    /// (compressed form) or y itself (uncompressed).
    gx: Vec<u8>,
    gy: Generator,
    n: Vec<u8>,
    cofactor: Vec<u8>,
}

#[derive(PartialEq, Eq, Clone)]
enum Generator {
    Y(Vec<u8>),
    Parity(u8),
}

fn trimmed(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

fn uint(any: &Any) -> Option<Vec<u8>> {
    any.decode_as::<UintRef<'_>>()
        .ok()
        .map(|u| trimmed(u.as_bytes()))
}

fn octets(any: &Any) -> Option<Vec<u8>> {
    any.decode_as::<der::asn1::OctetString>()
        .ok()
        .map(|o| o.as_bytes().to_vec())
}

fn parse(der: &[u8]) -> Option<Domain> {
    let top: Vec<Any> = Vec::from_der(der).ok()?;
    if !(5..=6).contains(&top.len()) || uint(&top[0])? != [1] {
        return None;
    }
    let field: Vec<Any> = top[1].decode_as().ok()?;
    if field.len() != 2 || field[0].decode_as::<ObjectIdentifier>().ok()? != PRIME_FIELD {
        return None;
    }
    let p = uint(&field[1])?;
    let curve: Vec<Any> = top[2].decode_as().ok()?;
    if !(2..=3).contains(&curve.len()) {
        return None;
    }
    let base = octets(&top[3])?;
    let field_len = p.len();
    let (gx, gy) = match base.split_first()? {
        (0x04, xy) if xy.len() == 2 * field_len => (
            trimmed(&xy[..field_len]),
            Generator::Y(trimmed(&xy[field_len..])),
        ),
        (tag @ (0x02 | 0x03), x) if x.len() == field_len => {
            (trimmed(x), Generator::Parity(tag & 1))
        }
        _ => return None,
    };
    let cofactor = match top.get(5) {
        Some(h) => uint(h)?,
        None => vec![1],
    };
    Some(Domain {
        p,
        a: trimmed(&octets(&curve[0])?),
        b: trimmed(&octets(&curve[1])?),
        gx,
        gy,
        n: uint(&top[4])?,
        cofactor,
    })
}

static DOMAINS: Lazy<Vec<(Curve, Domain)>> = Lazy::new(|| {
    CANONICAL
        .iter()
        .map(|(curve, der)| {
            let der = hex::decode(der).expect("canonical parameters are hex");
            (*curve, parse(&der).expect("canonical parameters parse"))
        })
        .collect()
});

/// What explicit parameters describe.
#[derive(Debug, PartialEq, Eq)]
pub enum Explicit {
    /// Not a well-formed prime-field `ECParameters`.
    Malformed,
    /// A curve, but none this module supports.
    Unsupported,
    Named(Curve),
}

/// The supported named curve that explicit parameters `der` describe, if any.
pub fn named_curve_of(der: &[u8]) -> Explicit {
    let Some(given) = parse(der) else {
        return Explicit::Malformed;
    };
    let found = DOMAINS.iter().find_map(|(curve, known)| {
        let gy_matches = match (&given.gy, &known.gy) {
            (Generator::Y(y), Generator::Y(known_y)) => y == known_y,
            (Generator::Parity(parity), Generator::Y(known_y)) => {
                known_y.last().map(|b| b & 1) == Some(*parity)
            }
            _ => false,
        };
        let same = given.p == known.p
            && given.a == known.a
            && given.b == known.b
            && given.gx == known.gx
            && gy_matches
            && given.n == known.n
            && given.cofactor == known.cofactor;
        same.then_some(*curve)
    });
    found.map_or(Explicit::Unsupported, Explicit::Named)
}
