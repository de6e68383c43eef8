//! A hostile alert rules component for the host's sandbox tests; never deploy it.
//!
//! It exports the real `alerter` world, so the host loads it like any alert rules
//! component. The last decimal digit of `event-time-ms` picks the misbehaviour: 1 loops
//! forever, 2 allocates without bound, 3 panics (a trap), 4 returns a 4 MiB output, far larger
//! than any real one, and any other digit returns a quiet outcome.

wit_bindgen::generate!({ world: "alerter", path: "../../wit" });

use exports::cardiowatch::pipeline::alert_rules::{
    AlertInput, AlertOutcome, ClinicalRisk, Guest, News2, RuleError,
};

struct Hostile;

impl Guest for Hostile {
    fn evaluate(input: AlertInput) -> Result<AlertOutcome, RuleError> {
        match input.event_time_ms.rem_euclid(10) {
            1 => spin_forever(),
            2 => exhaust_memory(),
            3 => panic!("hostile component trapped on purpose"),
            4 => Ok(outcome(&input, "x".repeat(4 << 20))),
            _ => Ok(outcome(&input, String::new())),
        }
    }
}

fn spin_forever() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn exhaust_memory() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&blocks);
    }
}

fn outcome(input: &AlertInput, missing: String) -> AlertOutcome {
    AlertOutcome {
        news2: News2 {
            total: 0,
            risk: ClinicalRisk::Low,
            parameters: Vec::new(),
            missing: vec![missing],
        },
        alerts: Vec::new(),
        state: input.state,
    }
}

export!(Hostile);
