//! Wrapped keys (real ones mutated, or any bytes) with templates into C_UnwrapKey.
#![no_main]

use arbitrary::Arbitrary;
use ferrohsm::ffi as p11;
use ferrohsm_fuzz::input::Mutation;
use ferrohsm_fuzz::*;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Wrapped {
    /// A key the fixture wrapped, mutated, unwrapped with its own mechanism and key.
    Sample(u8, Mutation),
    Raw {
        mech: MechSel,
        param: Param,
        key: KeySel,
        blob: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    wrapped: Wrapped,
    template: Vec<Attr>,
}

fuzz_target!(|input: Input| {
    let fx = fixture();
    let (mech, param, key, blob) = match input.wrapped {
        Wrapped::Sample(i, mutation) => {
            let sample = &fx.wrapped[i as usize % fx.wrapped.len()];
            let (blob, _) = mutation.apply(&sample.output);
            (sample.mech, sample.param.clone(), sample.key, blob)
        }
        Wrapped::Raw {
            mech,
            param,
            key,
            blob,
        } => (mech.get(), param, key.get(), blob),
    };
    let session = ExecSession::open();
    let mut m = RawMechanism::new(mech, &param);
    let mut t = RawTemplate::new(&input.template);
    let mut blob = blob;
    let mut h = 0;
    // SAFETY: raw call with buffers that live across it.
    let rv = unsafe {
        p11::C_UnwrapKey(
            session.handle,
            m.ptr(),
            key,
            blob.as_mut_ptr(),
            blob.len() as CK_ULONG,
            t.ptr(),
            t.len(),
            &mut h,
        )
    };
    check(rv, "C_UnwrapKey");
});
