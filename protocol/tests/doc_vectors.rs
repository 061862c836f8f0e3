//! The worked vectors in docs/protocol.md are what the code computes.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use pooya_protocol::{CardSeed, Policies, first_pin, pin, second_pin, transaction_pin};

const DOC: &str = include_str!("../../docs/protocol.md");
const TIME: u64 = 1_763_700_000;

fn table() -> Vec<(String, String)> {
    let start = DOC.find("<!-- vectors:begin -->").expect("begin marker");
    let end = DOC.find("<!-- vectors:end -->").expect("end marker");
    DOC[start..end]
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() == 4 && cells[2].starts_with('`'))
                .then(|| (cells[1].to_owned(), cells[2].trim_matches('`').to_owned()))
        })
        .collect()
}

#[test]
fn worked_vectors_match() {
    let seed = CardSeed::from_bytes(core::array::from_fn(|i| i as u8));
    let keys = seed.derive_keys();
    let p = Policies::default();
    let rows = table();
    assert_eq!(rows.len(), 9, "every row parsed");
    for (what, value) in rows {
        let computed = match what.as_str() {
            "key first" => hex::encode(keys.first.expose_secret()),
            "key second" => hex::encode(keys.second.expose_secret()),
            "key transaction" => hex::encode(keys.tx.expose_secret()),
            "first PIN" => first_pin(&keys, &p, TIME).unwrap().code,
            "transaction question, 1250000 Rials to IR-SHOP-42" => {
                pin::transaction_question(1_250_000, "IR-SHOP-42").unwrap()
            }
            "transaction PIN, 1250000 Rials to IR-SHOP-42" => {
                transaction_pin(&keys, &p, 1_250_000, "IR-SHOP-42", TIME)
                    .unwrap()
                    .code
            }
            other => {
                let cap: u64 = other
                    .strip_prefix("second PIN, cap ")
                    .unwrap_or_else(|| panic!("unknown row {other}"))
                    .parse()
                    .unwrap();
                second_pin(&keys, &p, cap, TIME).unwrap().code
            }
        };
        assert_eq!(computed, value, "{what}");
    }
}
