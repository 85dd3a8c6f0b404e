//! Loading the modules, finding their tokens, and the measurements themselves: every
//! operation on every module, interleaved, with its threads and repetitions.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::Args;
use crate::operations::{self, describe, NotMeasured, Operation, Prepared, Setup, Worker};

/// The label --init gives a token when --token does not name one.
const DEFAULT_INIT_LABEL: &str = "ferrohsm-bench";

/// One loaded module, logged in to its token, with the keys of the operations prepared so
/// far (session objects of `setup_session`, which stays open for the whole run).
pub struct Module {
    pub name: String,
    pub path: PathBuf,
    pkcs11: Pkcs11,
    slot: Slot,
    setup_session: Session,
    mechanisms: Vec<MechanismType>,
    prepared: HashMap<Operation, Result<Prepared, NotMeasured>>,
}

/// A short name for tables: the file name without `lib` and `.so` (`libsofthsm2.so` is
/// "softhsm2"), numbered when two modules would share one.
pub fn module_names(paths: &[PathBuf]) -> Vec<String> {
    let base: Vec<String> = paths
        .iter()
        .map(|path| {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            let stem = stem.unwrap_or_else(|| path.display().to_string());
            stem.strip_prefix("lib").map(str::to_owned).unwrap_or(stem)
        })
        .collect();
    base.iter()
        .enumerate()
        .map(|(index, name)| {
            if base.iter().filter(|other| *other == name).count() > 1 {
                format!("{name}#{}", index + 1)
            } else {
                name.clone()
            }
        })
        .collect()
}

pub fn open_module(path: &Path, name: String, args: &Args) -> Result<Module, String> {
    let shown = path.display();
    let pkcs11 = Pkcs11::new(path).map_err(|e| format!("cannot load {shown}: {e}"))?;
    // The library stays loaded until the process exits: unloading a module (dlclose) while
    // it may still have threads or atexit handlers of its own is a crash some modules have.
    std::mem::forget(pkcs11.clone());
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| format!("{shown}: {}", describe(&e)))?;
    let pin = args
        .user_pin()
        .ok_or("no user PIN: give --pin or set FERROHSM_PIN")?;
    if args.init {
        init_token(&pkcs11, args, &pin).map_err(|e| format!("{shown}: --init: {e}"))?;
    }
    let slot = find_slot(&pkcs11, args).map_err(|e| format!("{shown}: {e}"))?;
    let setup_session = pkcs11
        .open_rw_session(slot)
        .map_err(|e| format!("{shown}: {}", describe(&e)))?;
    login(&setup_session, &pin).map_err(|e| format!("{shown}: {}", describe(&e)))?;
    let mechanisms = pkcs11
        .get_mechanism_list(slot)
        .map_err(|e| format!("{shown}: {}", describe(&e)))?;
    Ok(Module {
        name,
        path: path.to_owned(),
        pkcs11,
        slot,
        setup_session,
        mechanisms,
        prepared: HashMap::new(),
    })
}

fn login(session: &Session, pin: &str) -> Result<(), Error> {
    match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
        Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        other => other,
    }
}

/// --init: a fresh token in the first slot whose token is not initialised, SO and user PIN
/// set.
fn init_token(pkcs11: &Pkcs11, args: &Args, user_pin: &str) -> Result<(), String> {
    let so_pin = args.so_pin.as_deref().ok_or("--init needs --so-pin")?;
    let label = args.token_label.as_deref().unwrap_or(DEFAULT_INIT_LABEL);
    let slots = pkcs11.get_slots_with_token().map_err(|e| e.to_string())?;
    let spare = slots
        .into_iter()
        .find(|slot| {
            pkcs11
                .get_token_info(*slot)
                .is_ok_and(|info| !info.token_initialized())
        })
        .ok_or("no slot with an uninitialised token")?;
    let so_pin = AuthPin::new(so_pin.into());
    pkcs11
        .init_token(spare, &so_pin, label)
        .map_err(|e| describe(&e))?;
    // Some modules (SoftHSMv2, ferrohsm) move a token to a new slot id once initialised.
    let slot = slot_by_label(pkcs11, label)?.ok_or("the new token is not listed")?;
    let session = pkcs11.open_rw_session(slot).map_err(|e| e.to_string())?;
    session
        .login(UserType::So, Some(&so_pin))
        .map_err(|e| format!("SO {}", describe(&e)))?;
    session
        .init_pin(&AuthPin::new(user_pin.into()))
        .map_err(|e| describe(&e))?;
    session.logout().map_err(|e| e.to_string())?;
    Ok(())
}

fn slot_by_label(pkcs11: &Pkcs11, label: &str) -> Result<Option<Slot>, String> {
    let slots = pkcs11.get_slots_with_token().map_err(|e| e.to_string())?;
    Ok(slots.into_iter().find(|slot| {
        pkcs11
            .get_token_info(*slot)
            .is_ok_and(|info| info.token_initialized() && info.label() == label)
    }))
}

/// --slot, else --token, else the first initialised token (also after --init, which made
/// the token labelled --token or the default label).
fn find_slot(pkcs11: &Pkcs11, args: &Args) -> Result<Slot, String> {
    if let Some(id) = args.slot {
        let slots = pkcs11.get_slots_with_token().map_err(|e| e.to_string())?;
        return slots
            .into_iter()
            .find(|slot| slot.id() == id)
            .ok_or(format!("no token in slot {id}"));
    }
    let label = match (&args.token_label, args.init) {
        (Some(label), _) => Some(label.as_str()),
        (None, true) => Some(DEFAULT_INIT_LABEL),
        (None, false) => None,
    };
    if let Some(label) = label {
        return slot_by_label(pkcs11, label)?.ok_or(format!("no token labelled {label:?}"));
    }
    let slots = pkcs11.get_slots_with_token().map_err(|e| e.to_string())?;
    slots
        .into_iter()
        .find(|slot| {
            pkcs11
                .get_token_info(*slot)
                .is_ok_and(|info| info.token_initialized())
        })
        .ok_or("no initialised token (see --init)".to_owned())
}

/// One measurement: calls per second of wall time and the calls' latency percentiles.
pub struct Measurement {
    pub ops_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// The figures of one operation, module and thread count over the repetitions.
#[derive(Clone)]
pub enum Outcome {
    Measured {
        /// Medians over the repetitions.
        ops_per_sec: f64,
        p50: Duration,
        p99: Duration,
        /// ops/s of each repetition.
        repetitions: Vec<f64>,
    },
    Unsupported(String),
    Failed(String),
}

pub struct Row {
    pub operation: Operation,
    pub threads: usize,
    pub module: String,
    pub outcome: Outcome,
}

fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{wide_bar} {pos}/{len} [{elapsed_precise}] {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Every operation on every module, interleaved (operation by operation, thread count by
/// thread count, repetition by repetition, each module in turn) so that the machine's load
/// changes fall on all modules alike.
pub fn run_all(modules: &mut [Module], operations: &[Operation], args: &Args) -> Vec<Row> {
    let pin = args.user_pin().unwrap_or_default();
    let thread_counts = |op: Operation| -> Vec<usize> {
        if op.single_threaded() {
            vec![1]
        } else {
            args.threads.clone()
        }
    };
    let total: usize = operations
        .iter()
        .map(|op| thread_counts(*op).len() * args.repeat as usize * modules.len())
        .sum();
    let bar = progress_bar(total as u64);
    let mut rows = Vec::new();
    for &operation in operations {
        for module in modules.iter_mut() {
            bar.set_message(format!("preparing {} on {}", operation.name(), module.name));
            module.prepare(operation, &pin, args);
        }
        for threads in thread_counts(operation) {
            let mut per_module: Vec<Vec<Result<Measurement, NotMeasured>>> =
                modules.iter().map(|_| Vec::new()).collect();
            for _ in 0..args.repeat {
                for (index, module) in modules.iter().enumerate() {
                    bar.set_message(format!(
                        "{} {}x on {}",
                        operation.name(),
                        threads,
                        module.name
                    ));
                    per_module[index].push(module.measure(operation, threads, args, &pin));
                    bar.inc(1);
                }
            }
            for (module, results) in modules.iter().zip(per_module) {
                rows.push(Row {
                    operation,
                    threads,
                    module: module.name.clone(),
                    outcome: summarise(results),
                });
            }
        }
    }
    bar.finish_and_clear();
    rows
}

fn summarise(results: Vec<Result<Measurement, NotMeasured>>) -> Outcome {
    let mut measured = Vec::new();
    for result in results {
        match result {
            Ok(measurement) => measured.push(measurement),
            Err(NotMeasured::Unsupported(why)) => return Outcome::Unsupported(why),
            Err(NotMeasured::Failed(why)) => return Outcome::Failed(why),
        }
    }
    let repetitions: Vec<f64> = measured.iter().map(|m| m.ops_per_sec).collect();
    Outcome::Measured {
        ops_per_sec: median_f64(&repetitions),
        p50: median_duration(measured.iter().map(|m| m.p50).collect()),
        p99: median_duration(measured.iter().map(|m| m.p99).collect()),
        repetitions,
    }
}

pub fn median_f64(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn median_duration(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// The latency below which `percent` % of the sorted calls fall.
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() - 1) * percent / 100]
}

impl Module {
    fn prepare(&mut self, operation: Operation, pin: &str, args: &Args) {
        if self.prepared.contains_key(&operation) {
            return;
        }
        // cryptoki's C_GetMechanismList leaves out the values it does not know, vendor ones
        // among them: those are asked for one by one.
        let has_mechanism = |mechanism: MechanismType| {
            self.mechanisms.contains(&mechanism)
                || self.pkcs11.get_mechanism_info(self.slot, mechanism).is_ok()
        };
        let setup = Setup {
            session: &self.setup_session,
            has_mechanism: &has_mechanism,
            pin,
            keygen_keys: args.keygen_keys,
            objects: args.objects,
        };
        let prepared = operations::prepare(operation, &setup);
        self.prepared.insert(operation, prepared);
    }

    fn measure(
        &self,
        operation: Operation,
        threads: usize,
        args: &Args,
        pin: &str,
    ) -> Result<Measurement, NotMeasured> {
        let prepared = match self.prepared.get(&operation) {
            Some(Ok(prepared)) => prepared,
            Some(Err(why)) => return Err(why.clone()),
            None => return Err(NotMeasured::Failed("not prepared".into())),
        };
        // C_Login fails while the user is logged in, and logging in acts on every session:
        // the setup session logs out for the measurement and back in after it.
        let logs_in = matches!(prepared, Prepared::LoginLogout { .. });
        if logs_in {
            self.setup_session
                .logout()
                .map_err(|e| NotMeasured::from_error("C_Logout", e))?;
        }
        let measured = self.measure_threads(prepared, threads, args.measurement_time());
        if logs_in {
            login(&self.setup_session, pin)
                .map_err(|e| NotMeasured::Failed(format!("C_Login after the measurement: {e}")))?;
        }
        measured.map_err(|e| NotMeasured::from_error(operation.name(), e))
    }

    /// `threads` threads, each with its own session, call the operation until `duration`
    /// has passed (key generation: a set number of keys each); ops/s is all their calls over
    /// the wall time from the common start to the last thread's end.
    fn measure_threads(
        &self,
        prepared: &Prepared,
        threads: usize,
        duration: Duration,
    ) -> Result<Measurement, Error> {
        // Key generation takes a set number of keys (a second each on some modules), every
        // other operation runs for the measurement time.
        let fixed_count = match prepared {
            Prepared::RsaKeygen { keys_per_thread } => Some(u64::from(*keys_per_thread)),
            _ => None,
        };
        let start_line = Barrier::new(threads + 1);
        // Sessions are not shared between threads: each opens its own from the library.
        let (pkcs11, slot) = (&self.pkcs11, self.slot);
        let (started, results) = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|thread_index| {
                    let start_line = &start_line;
                    scope.spawn(move || {
                        // Open before the start, so that no measurement includes it.
                        let session = pkcs11.open_rw_session(slot);
                        start_line.wait();
                        let worker = Worker {
                            pkcs11: pkcs11.clone(),
                            slot,
                            session: session?,
                            made: Default::default(),
                        };
                        run_thread(
                            prepared,
                            &worker,
                            thread_index as u64,
                            fixed_count,
                            duration,
                        )
                    })
                })
                .collect();
            start_line.wait();
            let started = Instant::now();
            let results: Vec<_> = handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or(Err(Error::InvalidValue)))
                .collect();
            (started, results)
        });
        let mut wall_time = started.elapsed();
        let mut latencies = Vec::new();
        let mut untimed = Duration::ZERO;
        let threads = results.len().max(1) as u32;
        for result in results {
            let (thread_latencies, thread_untimed) = result?;
            latencies.extend(thread_latencies);
            untimed += thread_untimed;
        }
        // The threads' untimed parts (destroying what an unwrap made) ran side by side: the
        // wall time loses their mean.
        wall_time = wall_time.saturating_sub(untimed / threads);
        latencies.sort();
        Ok(Measurement {
            ops_per_sec: latencies.len() as f64 / wall_time.as_secs_f64().max(1e-9),
            p50: percentile(&latencies, 50),
            p99: percentile(&latencies, 99),
        })
    }
}

fn run_thread(
    prepared: &Prepared,
    worker: &Worker,
    thread_index: u64,
    fixed_count: Option<u64>,
    duration: Duration,
) -> Result<(Vec<Duration>, Duration), Error> {
    let mut latencies = Vec::new();
    // Time spent outside the timed part (`Prepared::clean_up`).
    let mut untimed = Duration::ZERO;
    let began = Instant::now();
    let mut before = began;
    // Distinct per thread and call, so that no two GCM encryptions share an IV.
    let mut iteration = thread_index << 40;
    loop {
        prepared.run_once(worker, iteration)?;
        let mut after = Instant::now();
        latencies.push(after - before);
        iteration += 1;
        let done = match fixed_count {
            Some(count) => latencies.len() as u64 >= count,
            None => after - began - untimed >= duration,
        };
        if Prepared::clean_up_due(worker, done) {
            Prepared::clean_up(worker)?;
            let cleaned = Instant::now();
            untimed += cleaned - after;
            after = cleaned;
        }
        before = after;
        if done {
            return Ok((latencies, untimed));
        }
    }
}
