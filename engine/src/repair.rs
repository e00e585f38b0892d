//! Ordering repairs: expected cost of repair (ECR), updating P-over-C, and the exact optimum by
//! dynamic programming over the set of actions already tried.
//!
//! Causes are indices into a posterior; an action resolves cause `c` with probability `r(c)`,
//! independently of the other actions given the cause (single fault).

/// A fix, an article or escalation, as far as ordering is concerned.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairAction {
    /// What trying it costs (seconds).
    pub cost: f64,
    /// `(cause, P(resolves | cause))` for every cause it can resolve; other causes it cannot.
    pub resolves: Vec<(usize, f64)>,
}

impl RepairAction {
    /// P(resolves | cause).
    pub fn resolve_probability_for(&self, cause: usize) -> f64 {
        self.resolves
            .iter()
            .find(|(c, _)| *c == cause)
            .map_or(0.0, |(_, p)| *p)
    }

    /// Σ_c w_c · r(c): the (unnormalised) chance of resolving given failure weights `w`.
    pub(crate) fn resolved_mass(&self, weights: &[f64]) -> f64 {
        self.resolves.iter().map(|(c, r)| weights[*c] * r).sum()
    }

    /// Conditions `weights` on this action having failed.
    fn fail(&self, weights: &mut [f64]) {
        for (c, r) in &self.resolves {
            weights[*c] *= 1.0 - r;
        }
    }
}

/// An order of actions and its expected cost of repair.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairPlan {
    /// Action indices, first to try first. Actions that could no longer help are left out.
    pub order: Vec<usize>,
    /// `Σ_i C_i · P(the first i-1 actions failed)`.
    pub expected_cost: f64,
}

/// `ECR = Σ_i C_i · P(first i-1 failed)` of trying `order` under `posterior` (summing to 1).
pub fn expected_cost_of_repair(
    actions: &[RepairAction],
    order: &[usize],
    posterior: &[f64],
) -> f64 {
    let mut weights = posterior.to_vec();
    let mut cost = 0.0;
    for &action in order {
        let unresolved: f64 = weights.iter().sum();
        if unresolved <= 0.0 {
            break;
        }
        cost += actions[action].cost * unresolved;
        actions[action].fail(&mut weights);
    }
    cost
}

/// Updating P-over-C: repeatedly try the action with the largest `P(resolves | e) / cost`, then
/// condition on its failure. Optimal when actions are independent and perfect (Kadane & Simon).
pub fn updating_p_over_c(actions: &[RepairAction], posterior: &[f64]) -> RepairPlan {
    let candidates: Vec<usize> = (0..actions.len()).collect();
    let mut order = Vec::new();
    let expected_cost = greedy(
        actions,
        &candidates,
        posterior,
        |p, cost| p / cost,
        Some(&mut order),
    );
    RepairPlan {
        order,
        expected_cost,
    }
}

/// Updating P-over-C restricted to `candidates`; pushes the order into `order` when given and
/// returns the ECR. The engine calls this for every hypothetical answer, so it allocates little.
pub(crate) fn p_over_c_among(
    actions: &[RepairAction],
    candidates: &[usize],
    posterior: &[f64],
    order: Option<&mut Vec<usize>>,
) -> f64 {
    greedy(actions, candidates, posterior, |p, cost| p / cost, order)
}

/// "Most likely first": the action most likely to resolve given the failures so far, whatever
/// it costs. A baseline for the simulator.
pub(crate) fn most_likely_first(
    actions: &[RepairAction],
    candidates: &[usize],
    posterior: &[f64],
) -> Vec<usize> {
    let mut order = Vec::new();
    greedy(actions, candidates, posterior, |p, _| p, Some(&mut order));
    order
}

/// "Most likely first" deciding for itself when to give up, without looking at costs: the
/// fixes among `candidates` by probability, each tried only while its chance of resolving the
/// case given that the earlier ones failed is at least `cutoff`; the caller escalates after
/// the last. A cutoff of 0 tries every fix that can still help. A baseline for the simulator.
pub(crate) fn most_likely_first_until(
    actions: &[RepairAction],
    candidates: &[usize],
    posterior: &[f64],
    cutoff: f64,
) -> Vec<usize> {
    let mut weights = posterior.to_vec();
    let mut kept = Vec::new();
    for action in most_likely_first(actions, candidates, posterior) {
        let unresolved: f64 = weights.iter().sum();
        if unresolved <= 0.0 || actions[action].resolved_mass(&weights) < cutoff * unresolved {
            break;
        }
        actions[action].fail(&mut weights);
        kept.push(action);
    }
    kept
}

/// "Cheapest first": by cost, ties to the more likely. A baseline for the simulator.
pub(crate) fn cheapest_first(
    actions: &[RepairAction],
    candidates: &[usize],
    posterior: &[f64],
) -> Vec<usize> {
    let mut order = candidates.to_vec();
    order.sort_by(|a, b| {
        let (a, b) = (&actions[*a], &actions[*b]);
        a.cost.total_cmp(&b.cost).then(
            b.resolved_mass(posterior)
                .total_cmp(&a.resolved_mass(posterior)),
        )
    });
    order
}

fn greedy(
    actions: &[RepairAction],
    candidates: &[usize],
    posterior: &[f64],
    score: impl Fn(f64, f64) -> f64,
    mut order: Option<&mut Vec<usize>>,
) -> f64 {
    let mut weights = posterior.to_vec();
    let mut remaining = candidates.to_vec();
    let mut unresolved: f64 = weights.iter().sum();
    let mut cost = 0.0;
    while unresolved > 0.0 {
        let mut best: Option<(usize, f64)> = None;
        for (slot, &action) in remaining.iter().enumerate() {
            let p = actions[action].resolved_mass(&weights);
            if p <= 0.0 {
                continue;
            }
            // Comparing unnormalised masses ranks exactly as P(resolves | earlier failed) would.
            let s = score(p, actions[action].cost);
            if best.is_none_or(|(_, best_score)| s > best_score) {
                best = Some((slot, s));
            }
        }
        let Some((slot, _)) = best else {
            break;
        };
        let action = remaining.remove(slot);
        cost += actions[action].cost * unresolved;
        actions[action].fail(&mut weights);
        // Re-summing (rather than subtracting) makes a certain action leave exactly zero.
        unresolved = weights.iter().sum();
        if let Some(order) = order.as_deref_mut() {
            order.push(action);
        }
    }
    cost
}

/// The largest number of actions [`optimal_order`] accepts (2^16 subsets).
pub const MAX_OPTIMAL_ACTIONS: usize = 16;

/// [`optimal_order`] was given more actions than it can enumerate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooManyActions {
    /// How many were given.
    pub actions: usize,
}

impl std::fmt::Display for TooManyActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} actions is more than the {MAX_OPTIMAL_ACTIONS} the exact optimum can enumerate",
            self.actions
        )
    }
}

impl std::error::Error for TooManyActions {}

/// The exact minimum-ECR order by dynamic programming over the set S of actions already tried:
/// `V(S) = min_{a∉S} [C_a · P(ε_S) + V(S ∪ {a})]`, where `P(ε_S)` is the chance that every
/// action in S failed. Actions that can no longer resolve anything are never chosen.
pub fn optimal_order(
    actions: &[RepairAction],
    posterior: &[f64],
) -> Result<RepairPlan, TooManyActions> {
    let n = actions.len();
    if n > MAX_OPTIMAL_ACTIONS {
        return Err(TooManyActions { actions: n });
    }
    let causes = posterior.len();
    let states = 1usize << n;
    // failure[S][c] = P(c) · Π_{j∈S} (1 - r_j(c)), built from S without its lowest action.
    let mut failure = vec![0.0; states * causes];
    failure[..causes].copy_from_slice(posterior);
    for set in 1..states {
        let lowest = set.trailing_zeros() as usize;
        let (done, row) = failure.split_at_mut(set * causes);
        let previous = set & (set - 1);
        row[..causes].copy_from_slice(&done[previous * causes..(previous + 1) * causes]);
        actions[lowest].fail(&mut row[..causes]);
    }
    let mut value = vec![0.0; states];
    let mut choice: Vec<Option<usize>> = vec![None; states];
    for set in (0..states).rev() {
        let weights = &failure[set * causes..(set + 1) * causes];
        let unresolved: f64 = weights.iter().sum();
        if unresolved <= 0.0 {
            continue;
        }
        for (action, spec) in actions.iter().enumerate() {
            if set & (1 << action) != 0 || spec.resolved_mass(weights) <= 0.0 {
                continue;
            }
            let candidate = spec.cost * unresolved + value[set | (1 << action)];
            if choice[set].is_none() || candidate < value[set] {
                value[set] = candidate;
                choice[set] = Some(action);
            }
        }
    }
    let mut order = Vec::new();
    let mut set = 0usize;
    while let Some(action) = choice[set] {
        order.push(action);
        set |= 1 << action;
    }
    Ok(RepairPlan {
        order,
        expected_cost: value[0],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(cost: f64, resolves: &[(usize, f64)]) -> RepairAction {
        RepairAction {
            cost,
            resolves: resolves.to_vec(),
        }
    }

    #[test]
    fn ecr_charges_each_action_by_the_chance_that_everything_before_it_failed() {
        let actions = [action(10.0, &[(0, 1.0)]), action(30.0, &[(1, 0.5)])];
        let posterior = [0.6, 0.4];
        // 10 always, then 30 with P(first failed) = 0.4.
        assert!((expected_cost_of_repair(&actions, &[0, 1], &posterior) - 22.0).abs() < 1e-12);
        // 30 always, then 10 with P(first failed) = 0.6 + 0.4 · 0.5 = 0.8.
        assert!((expected_cost_of_repair(&actions, &[1, 0], &posterior) - 38.0).abs() < 1e-12);
    }

    #[test]
    fn p_over_c_prefers_a_cheap_likely_action_and_recomputes_after_failures() {
        // Action 0 is likely but dear; action 1 cheap and a little less likely.
        let actions = [
            action(100.0, &[(0, 0.9)]),
            action(5.0, &[(1, 0.9)]),
            action(20.0, &[(0, 0.9)]),
        ];
        let plan = updating_p_over_c(&actions, &[0.6, 0.4]);
        assert_eq!(plan.order, vec![1, 2, 0]);
        assert!(
            (plan.expected_cost - expected_cost_of_repair(&actions, &plan.order, &[0.6, 0.4]))
                .abs()
                < 1e-12
        );
    }

    #[test]
    fn the_optimum_never_costs_more_than_p_over_c_and_finds_the_better_order() {
        let actions = [
            action(1.0, &[(0, 0.5), (1, 0.5)]),
            action(1.2, &[(0, 1.0)]),
            action(1.2, &[(1, 1.0)]),
        ];
        let posterior = [0.5, 0.5];
        let optimum = optimal_order(&actions, &posterior).unwrap();
        let greedy = updating_p_over_c(&actions, &posterior);
        assert!(optimum.expected_cost <= greedy.expected_cost + 1e-12);
        assert!(
            (optimum.expected_cost - expected_cost_of_repair(&actions, &optimum.order, &posterior))
                .abs()
                < 1e-12
        );
    }

    #[test]
    fn most_likely_first_with_a_cutoff_stops_at_the_first_unlikely_fix() {
        let actions = [
            action(7200.0, &[(0, 0.9)]),
            action(60.0, &[(1, 0.5)]),
            action(30.0, &[(0, 0.2), (1, 0.2)]),
        ];
        let posterior = [0.7, 0.3];
        let every = [0, 1, 2];
        // By probability alone, each given the earlier failed: 0.63, 0.41, 0.2; costs never matter.
        assert_eq!(
            most_likely_first(&actions, &every, &posterior),
            vec![0, 1, 2]
        );
        assert_eq!(
            most_likely_first_until(&actions, &every, &posterior, 0.0),
            vec![0, 1, 2]
        );
        assert_eq!(
            most_likely_first_until(&actions, &every, &posterior, 0.3),
            vec![0, 1]
        );
        assert_eq!(
            most_likely_first_until(&actions, &every, &posterior, 0.5),
            vec![0]
        );
        assert!(most_likely_first_until(&actions, &every, &posterior, 0.9).is_empty());
    }

    #[test]
    fn too_many_actions_for_the_optimum_is_an_error_not_a_hang() {
        let actions = vec![action(1.0, &[(0, 0.5)]); MAX_OPTIMAL_ACTIONS + 1];
        assert_eq!(
            optimal_order(&actions, &[1.0]),
            Err(TooManyActions {
                actions: MAX_OPTIMAL_ACTIONS + 1
            })
        );
    }
}
