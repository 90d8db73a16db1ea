//! Property tests: random sequences of adds (with the caller's ids),
//! removals, compactions and save/load round trips against a plain model
//! (a map from id to vector), with searches, filters and reconstruction
//! checked after every step.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vector_accelerate::index::{IdSelector, Index, SearchParams};
use vector_accelerate::{knn, Context, Matrix, Metric, MISSING_ID};

const DIM: usize = 3;

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    /// Add vectors under these ids (duplicates and known ids are refused).
    Add(Vec<(u64, [i8; DIM])>),
    /// Add vectors under the next sequential ids.
    AddNext(Vec<[i8; DIM]>),
    /// Remove these ids.
    Remove(Vec<u64>),
    Compact,
    SaveLoad,
}

fn step() -> impl Strategy<Value = Step> {
    let id = 0u64..60;
    prop_oneof![
        4 => prop::collection::vec((id.clone(), prop::array::uniform3(-20i8..20)), 1..12).prop_map(Step::Add),
        3 => prop::collection::vec(prop::array::uniform3(-20i8..20), 1..12).prop_map(Step::AddNext),
        2 => prop::collection::vec(id, 1..8).prop_map(Step::Remove),
        1 => Just(Step::Compact),
        1 => Just(Step::SaveLoad),
    ]
}

/// The model's exact answer for `q`: every allowed vector by distance, then id.
fn model_search(
    model: &BTreeMap<u64, [f32; DIM]>,
    q: &[f32],
    k: usize,
    pass: impl Fn(u64) -> bool,
) -> Vec<(u64, f32)> {
    let ids: Vec<u64> = model.keys().copied().filter(|&id| pass(id)).collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let rows: Vec<f32> = ids.iter().flat_map(|id| model[id]).collect();
    let nn = knn(
        &Context::cpu(),
        Matrix::new(q.to_vec(), DIM).unwrap().view(),
        &Matrix::new(rows, DIM).unwrap(),
        k,
        Metric::L2,
    )
    .unwrap();
    nn.row_ids(0)
        .iter()
        .zip(nn.row_distances(0))
        .filter(|(&i, _)| i != MISSING_ID)
        .map(|(&i, &d)| (ids[i as usize], d))
        .collect()
}

/// The index agrees with the model: size, reconstruction, plain and
/// filtered searches (distances equal; ids equal up to ties).
fn agree(index: &Index, model: &BTreeMap<u64, [f32; DIM]>) -> Result<(), TestCaseError> {
    prop_assert_eq!(index.len(), model.len());
    for (&id, v) in model {
        prop_assert_eq!(index.reconstruct(id).unwrap(), v.to_vec());
    }
    let q = [0.5f32, -1.5, 2.0];
    let even = IdSelector::from_fn(|id| id % 2 == 0);
    for (filter, pass) in [
        (None, (|_| true) as fn(u64) -> bool),
        (Some(&even), |id: u64| id.is_multiple_of(2)),
    ] {
        let mut p = SearchParams::default();
        if let Some(f) = filter {
            p = p.with_filter(f);
        }
        let got = index
            .search(Matrix::new(q.to_vec(), DIM).unwrap().view(), 7, &p)
            .unwrap();
        let all = model_search(model, &q, model.len().max(1), pass);
        let want = &all[..all.len().min(7)];
        let present: Vec<(u64, f32)> = got
            .row_ids(0)
            .iter()
            .zip(got.row_distances(0))
            .filter(|(&i, _)| i != MISSING_ID)
            .map(|(&i, &d)| (i, d))
            .collect();
        prop_assert_eq!(present.len(), want.len());
        for ((gi, gd), (wi, wd)) in present.iter().zip(want) {
            prop_assert_eq!(gd, wd);
            // Another id at the same distance (possibly past the k-th) may
            // take a tied place.
            prop_assert!(gi == wi || all.iter().any(|(i, d)| i == gi && d == gd));
            prop_assert!(pass(*gi) && model.contains_key(gi));
        }
        let mut ids: Vec<u64> = present.iter().map(|p| p.0).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), present.len(), "distinct ids");
    }
    Ok(())
}

fn apply(
    index: &mut Index,
    (model, next): (&mut BTreeMap<u64, [f32; DIM]>, &mut u64),
    s: &Step,
    path: &std::path::Path,
) -> Result<(), TestCaseError> {
    match s {
        Step::Add(rows) => {
            let ids: Vec<u64> = rows.iter().map(|r| r.0).collect();
            let data: Vec<f32> = rows.iter().flat_map(|r| r.1.map(f32::from)).collect();
            let mut seen = std::collections::HashSet::new();
            let fresh = ids
                .iter()
                .all(|id| !model.contains_key(id) && seen.insert(*id));
            let res = index.add_with_ids(&Matrix::new(data, DIM).unwrap(), &ids);
            prop_assert_eq!(res.is_ok(), fresh, "{:?}", res);
            if fresh {
                for r in rows {
                    model.insert(r.0, r.1.map(f32::from));
                    *next = (*next).max(r.0 + 1);
                }
            }
        }
        Step::AddNext(rows) => {
            let data: Vec<f32> = rows.iter().flat_map(|r| r.map(f32::from)).collect();
            let got = index.add(&Matrix::new(data, DIM).unwrap()).unwrap();
            let first = *next;
            prop_assert_eq!(got, first..first + rows.len() as u64);
            for (i, r) in rows.iter().enumerate() {
                model.insert(first + i as u64, r.map(f32::from));
            }
            *next = first + rows.len() as u64;
        }
        Step::Remove(ids) => {
            let n = index
                .remove_ids(&IdSelector::allow(ids.iter().copied()))
                .unwrap();
            let before = model.len();
            for id in ids {
                model.remove(id);
            }
            prop_assert_eq!(n, before - model.len());
        }
        Step::Compact => index.compact().unwrap(),
        Step::SaveLoad => {
            index.save(path).unwrap();
            *index = Index::load(&Context::cpu(), path).unwrap();
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn flat_index_follows_a_model_through_any_history(steps in prop::collection::vec(step(), 1..14)) {
        let path = std::env::temp_dir().join(format!("va-props-{}.vai", std::process::id()));
        let mut index = Index::new(&Context::cpu(), DIM, "Flat", Metric::L2).unwrap();
        index.set_compaction_threshold(0.5).unwrap();
        let (mut model, mut next) = (BTreeMap::new(), 0u64);
        for s in &steps {
            apply(&mut index, (&mut model, &mut next), s, &path)?;
            agree(&index, &model)?;
        }
    }
}
