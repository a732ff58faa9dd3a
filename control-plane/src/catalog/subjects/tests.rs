//! The index answers exactly what comparing every pair of subjects answers.

use super::*;
use proptest::prelude::*;
use tributary_common::subject::overlap;
use tributary_proto::v1::Stream;

fn stream(name: &str, subjects: &[String]) -> Entity {
    Entity {
        kind: Some(Kind::Stream(Stream {
            name: name.into(),
            subjects: subjects.to_vec(),
            ..Default::default()
        })),
    }
}

/// What the overlap check did before the index: every new subject against every other one.
fn brute(streams: &[(String, Vec<String>)], name: &str, subjects: &[String]) -> bool {
    streams
        .iter()
        .filter(|(n, _)| n != name)
        .any(|(_, theirs)| {
            subjects
                .iter()
                .any(|m| theirs.iter().any(|t| overlap(m, t)))
        })
}

fn subject() -> impl Strategy<Value = String> {
    let token = prop_oneof!["[ab]", Just("*".to_string())];
    (prop::collection::vec(token, 1..4), any::<bool>()).prop_map(|(mut t, gt)| {
        if gt {
            t.push(">".into());
        }
        t.join(".")
    })
}

fn subjects() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(subject(), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_index_finds_an_overlap_exactly_when_some_pair_overlaps(
        stored in prop::collection::vec(subjects(), 0..4),
        new in subjects(),
        update in any::<bool>(),
    ) {
        let streams: Vec<(String, Vec<String>)> = stored
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("s{i}"), s))
            .collect();
        let index = SubjectIndex::of(streams.iter().map(|(n, s)| stream(n, s)).collect::<Vec<_>>().iter());
        // An update of the first stored stream must not count its own old subjects.
        let (name, own) = match streams.first() {
            Some((n, s)) if update => (n.clone(), s.clone()),
            _ => ("new".to_string(), Vec::new()),
        };
        let found = index.first_overlap(&name, &new, &own);
        prop_assert_eq!(found.is_some(), brute(&streams, &name, &new), "{:?}", found);
        if let Some(o) = found {
            prop_assert!(o.stream != name);
            prop_assert!(overlap(&o.mine, &o.theirs), "{:?}", o);
        }
    }

    #[test]
    fn removing_a_stream_leaves_the_index_as_if_it_never_was(
        a in subjects(),
        b in subjects(),
        probe in subjects(),
    ) {
        let (ea, eb) = (stream("a", &a), stream("b", &b));
        let mut index = SubjectIndex::of([&ea, &eb]);
        index.remove(&ea);
        let only_b = SubjectIndex::of([&eb]);
        prop_assert_eq!(
            index.first_overlap("p", &probe, &[]).is_some(),
            only_b.first_overlap("p", &probe, &[]).is_some()
        );
        index.remove(&eb);
        prop_assert_eq!(index.root.count, 0);
        prop_assert!(index.root.literal.is_empty() && index.root.star.is_none());
    }
}

#[test]
fn the_error_names_both_subjects_and_the_other_stream() {
    let index = SubjectIndex::of([&stream("default:ORDERS", &["orders.>".into()])]);
    let o = index
        .first_overlap("default:NEW", &["x.y".into(), "orders.eu.new".into()], &[])
        .expect("overlap");
    assert_eq!(
        o,
        Overlap {
            mine: "orders.eu.new".into(),
            theirs: "orders.>".into(),
            stream: "default:ORDERS".into(),
        }
    );
    assert_eq!(
        index.first_overlap("default:NEW", &["order".into()], &[]),
        None
    );
}
