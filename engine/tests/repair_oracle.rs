//! The exact optimum (dynamic programming) as an oracle for updating P-over-C, on random small
//! instances.

use engine::repair::{expected_cost_of_repair, optimal_order, updating_p_over_c, RepairAction};
use engine::rng::Rng;

fn random_posterior(rng: &mut Rng, causes: usize) -> Vec<f64> {
    let weights: Vec<f64> = (0..causes).map(|_| rng.gamma(1.0) + 1e-3).collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

/// An action resolving each cause with probability `share` of the time, at a random rate in
/// `low..1`.
fn random_action(rng: &mut Rng, causes: usize, share: f64, low: f64, cost: f64) -> RepairAction {
    let mut resolves = Vec::new();
    for cause in 0..causes {
        if rng.uniform() < share {
            resolves.push((cause, low + (0.99 - low) * rng.uniform()));
        }
    }
    RepairAction { cost, resolves }
}

fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut all = Vec::new();
    for (i, first) in items.iter().enumerate() {
        let mut rest = items.to_vec();
        rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, *first);
            all.push(tail);
        }
    }
    all
}

#[test]
fn p_over_c_is_optimal_when_fixes_are_independent_and_perfect() {
    let mut rng = Rng::seeded(21);
    for trial in 0..300 {
        let causes = 2 + rng.below(9);
        let posterior = random_posterior(&mut rng, causes);
        // Each fix resolves its own set of causes with certainty; the sets do not overlap.
        let fixes = 1 + rng.below(causes);
        let actions: Vec<RepairAction> = (0..fixes)
            .map(|fix| RepairAction {
                cost: 1.0 + 99.0 * rng.uniform(),
                resolves: (0..causes)
                    .filter(|c| c % fixes == fix)
                    .map(|c| (c, 1.0))
                    .collect(),
            })
            .collect();
        let greedy = updating_p_over_c(&actions, &posterior);
        let optimum = optimal_order(&actions, &posterior).unwrap();
        assert!(
            (greedy.expected_cost - optimum.expected_cost).abs() <= 1e-9 * optimum.expected_cost,
            "trial {trial}: P-over-C {} against the optimum {}",
            greedy.expected_cost,
            optimum.expected_cost
        );
    }
}

#[test]
fn the_optimum_is_a_lower_bound_and_p_over_c_stays_close_with_overlapping_imperfect_fixes() {
    let mut rng = Rng::seeded(22);
    let mut gaps = Vec::new();
    for trial in 0..300 {
        let causes = 2 + rng.below(7);
        let posterior = random_posterior(&mut rng, causes);
        let mut actions: Vec<RepairAction> = (0..1 + rng.below(9))
            .map(|_| {
                let cost = 1.0 + 99.0 * rng.uniform();
                random_action(&mut rng, causes, 0.4, 0.2, cost)
            })
            .collect();
        // Escalation: dear, but it always ends the fault.
        actions.push(RepairAction {
            cost: 500.0,
            resolves: (0..causes).map(|c| (c, 1.0)).collect(),
        });
        let greedy = updating_p_over_c(&actions, &posterior);
        let optimum = optimal_order(&actions, &posterior).unwrap();
        assert!(
            optimum.expected_cost <= greedy.expected_cost + 1e-9,
            "trial {trial}: the optimum is worse"
        );
        let recomputed = expected_cost_of_repair(&actions, &optimum.order, &posterior);
        assert!(
            (recomputed - optimum.expected_cost).abs() < 1e-9,
            "trial {trial}: the optimum's order does not cost its value"
        );
        gaps.push(greedy.expected_cost / optimum.expected_cost - 1.0);
    }
    let mean_gap = gaps.iter().sum::<f64>() / gaps.len() as f64;
    assert!(mean_gap < 0.01, "mean gap {mean_gap}");
}

#[test]
fn the_dynamic_programme_matches_brute_force_over_every_order() {
    let mut rng = Rng::seeded(23);
    for trial in 0..100 {
        let causes = 2 + rng.below(4);
        let posterior = random_posterior(&mut rng, causes);
        let mut actions: Vec<RepairAction> = (0..2 + rng.below(4))
            .map(|_| {
                let cost = 1.0 + 20.0 * rng.uniform();
                random_action(&mut rng, causes, 0.5, 0.1, cost)
            })
            .collect();
        actions.push(RepairAction {
            cost: 100.0,
            resolves: (0..causes).map(|c| (c, 1.0)).collect(),
        });
        let indices: Vec<usize> = (0..actions.len()).collect();
        let brute = permutations(&indices)
            .iter()
            .map(|order| expected_cost_of_repair(&actions, order, &posterior))
            .fold(f64::INFINITY, f64::min);
        let optimum = optimal_order(&actions, &posterior).unwrap();
        assert!(
            (brute - optimum.expected_cost).abs() < 1e-9,
            "trial {trial}: brute force {brute}, DP {}",
            optimum.expected_cost
        );
    }
}
