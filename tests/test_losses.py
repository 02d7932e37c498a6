"""MEML-GRPO's RIEL pieces with hand-computed values: advantages, expert selection, NLL, buffer."""

import pytest
import torch

from meml.method.losses import (
    HardExampleBuffer,
    best_and_worst_experts,
    intra_expert_advantages,
    token_mean_nll,
)


def _rewards():
    # question 0: expert 0 one right of four, expert 1 all wrong; question 1: half right, all right
    return torch.tensor([[[1, 0, 0, 0], [0, 0, 0, 0]], [[1, 1, 0, 0], [1, 1, 1, 1]]], dtype=torch.float)


def test_intra_expert_advantages_truncated_by_default():
    advantages = intra_expert_advantages(_rewards())
    expected = [[[0.75, 0, 0, 0], [0, 0, 0, 0]], [[0.5, 0.5, 0, 0], [0, 0, 0, 0]]]
    assert torch.allclose(advantages, torch.tensor(expected))
    assert advantages.shape == _rewards().shape


def test_intra_expert_advantages_untruncated_and_std_scaled():
    plain = intra_expert_advantages(_rewards(), positive_only=False)
    assert plain[0, 0].tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])
    assert plain[0, 1].tolist() == [0, 0, 0, 0]  # every answer wrong: no signal at all
    scaled = intra_expert_advantages(_rewards(), scale_by_std=True, positive_only=False)
    # [1,0,0,0]: sample std 0.5; [1,1,0,0]: sample std sqrt(1/3); 1e-4 added to the std
    assert scaled[0, 0].tolist() == pytest.approx([0.75 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001])
    c = 0.5 / ((1 / 3) ** 0.5 + 1e-4)
    assert scaled[1, 0].tolist() == pytest.approx([c, c, -c, -c])
    assert scaled[1, 1].tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="questions, experts, generations"):
        intra_expert_advantages(torch.zeros(2, 4))


def test_best_and_worst_experts_with_ties():
    rewards = torch.tensor([
        [[1, 1], [0, 0], [1, 0]],              # best 0, worst 1
        [[1, 0], [1, 0], [1, 0]],              # all tie: skipped
        [[0, 0], [1, 0], [1, 0]],              # best tie between 1 and 2 -> 1; worst 0
        [[0.5, 0.5], [0, 0], [0, 0]],          # best has no correct response (shaped rewards): skipped
    ], dtype=torch.float)
    best, worst, valid = best_and_worst_experts(rewards)
    assert best.tolist() == [0, 0, 1, 0]
    assert worst.tolist() == [1, 0, 0, 1]
    assert valid.tolist() == [True, False, True, False]


def test_random_tie_breaks_draw_among_the_tied_experts_only():
    import random

    rewards = torch.tensor([[[0, 0], [1, 0], [1, 0], [0, 0]]], dtype=torch.float)  # best: 1 or 2; worst: 0 or 3
    draws = [best_and_worst_experts(rewards, rng=random.Random(seed)) for seed in range(40)]
    assert {int(b[0]) for b, _, _ in draws} == {1, 2} and {int(w[0]) for _, w, _ in draws} == {0, 3}
    assert all(bool(v[0]) for _, _, v in draws)
    rng = random.Random(5)  # by hand: the draws are rng.choice([1, 2]) then rng.choice([0, 3])
    expected = (rng.choice([1, 2]), rng.choice([0, 3]))
    best, worst, _ = best_and_worst_experts(rewards, rng=random.Random(5))
    assert (int(best[0]), int(worst[0])) == expected
    untied = torch.tensor([[[1, 1], [0, 0], [1, 0]]], dtype=torch.float)
    best, worst, _ = best_and_worst_experts(untied, rng=random.Random(0))
    assert (int(best[0]), int(worst[0])) == (0, 1)  # no tie: no choice


def test_token_mean_nll_by_hand():
    logps = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert token_mean_nll(logps, mask).item() == pytest.approx(2.5)


def test_buffer_entry_rule_with_a_seeded_rng():
    # random.Random(0) draws 0.844, 0.758, 0.421, 0.259, 0.511; entry probability k/G = 6/8 = 0.75
    buffer = HardExampleBuffer(capacity=10, k=6, seed=0)
    assert not buffer.offer("q", n_wrong=6, group_size=8)  # 6 wrong is not more than K: no draw used
    assert [buffer.offer(f"q{i}", n_wrong=7, group_size=8) for i in range(3)] == [False, False, True]
    assert buffer.items == ["q2"]
    at_least = HardExampleBuffer(capacity=10, k=6, rule="ge", probability="always")
    assert at_least.offer("q", n_wrong=6, group_size=8)


def test_buffer_capacity_trigger_and_emptying():
    buffer = HardExampleBuffer(capacity=2, k=0, probability="always")
    assert [buffer.offer(i, n_wrong=1, group_size=8) for i in range(3)] == [True, True, False]
    assert buffer.full
    assert buffer.drain() == [0, 1] and buffer.items == [] and not buffer.full
    state = buffer.state()
    restored = HardExampleBuffer(capacity=2, k=0, probability="always")
    restored.load_state(state)
    assert restored.items == [] and restored._rng.getstate() == buffer._rng.getstate()
    with pytest.raises(ValueError, match="buffer.rule"):
        HardExampleBuffer(rule="maybe")
