"""Attention rules and the boolean masks they build, checked against literal definitions."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from resegzoo.methods.clip.schedule import (
    Rule, block_masks, default_schedule, levels_needed, neighbor_mask, parse_rule, resolve_schedule,
    segment_mask, token_ids_from_pixels)


def test_parse_rules_and_errors():
    assert parse_rule("global") == Rule("global")
    assert parse_rule("segment:3") == Rule("segment", 3)
    assert parse_rule(" neighbor:2 ") == Rule("neighbor", 2)
    for bad in ["segment", "segment:-1", "neighbour:1", "global:1", "segment:a", ""]:
        with pytest.raises(ValueError, match="bad attention rule"):
            parse_rule(bad)


def test_default_schedule_matches_method():
    rules = [str(r) for r in default_schedule(24)]
    assert rules == ["global"] * 18 + ["segment:0", "segment:1", "segment:2", "segment:3",
                                       "neighbor:0", "neighbor:0"]
    assert [str(r) for r in default_schedule(12)][:6] == ["global"] * 6
    assert default_schedule(12)[6:] == default_schedule(24)[18:]
    with pytest.raises(ValueError, match="at least 6 blocks"):
        default_schedule(4)
    with pytest.raises(ValueError, match="one rule per block"):
        resolve_schedule(["global"] * 3, 8)
    assert levels_needed(default_schedule(8)) == 4
    assert levels_needed([Rule("global"), Rule("neighbor", 1)]) == 0


def _brute_majority(patch: np.ndarray) -> int:
    values, counts = np.unique(patch, return_counts=True)  # values sorted ascending
    return int(values[np.argmax(counts)])  # first max = smallest id among ties


def test_token_ids_are_majority_with_ties_to_smaller_id():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, size=(2, 3, 12, 16))
    ids[0, 0, :4, :4] = 7  # a clean patch
    ids[0, 1, :4, :4] = np.array([3, 1] * 8).reshape(4, 4)  # an exact tie: 8 vs 8 -> 1
    got = token_ids_from_pixels(torch.from_numpy(ids), 4).numpy()
    assert got.shape == (2, 3, 3, 4)
    for b, lv, gy, gx in itertools.product(range(2), range(3), range(3), range(4)):
        patch = ids[b, lv, gy * 4:(gy + 1) * 4, gx * 4:(gx + 1) * 4]
        assert got[b, lv, gy, gx] == _brute_majority(patch)
    assert got[0, 0, 0, 0] == 7 and got[0, 1, 0, 0] == 1
    with pytest.raises(ValueError, match="multiple of the patch size"):
        token_ids_from_pixels(torch.zeros(1, 1, 10, 8, dtype=torch.int64), 4)


def _allowed_brute(z: np.ndarray, policy: str) -> np.ndarray:
    """Literal reading of METHOD.md: True = i may attend to j, token 0 = CLS."""
    g = len(z)
    ok = np.zeros((g + 1, g + 1), dtype=bool)
    ok[0, 0] = True
    for i in range(g):
        for j in range(g):
            same = z[i] == z[j]
            if policy == "self" and (z[i] == 0 or z[j] == 0):
                same = False
            if policy == "global" and z[i] == 0:
                same = True
            ok[i + 1, j + 1] = same or i == j
    return ok


@pytest.mark.parametrize("policy", ["group", "self", "global"])
def test_segment_mask_matches_definition(policy):
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 4, size=(3, 3, 4))  # zeros included: uncovered patches
    blocked = segment_mask(torch.from_numpy(ids), policy)
    assert blocked.dtype == torch.bool and blocked.shape == (3, 1, 13, 13)
    for b in range(3):
        expected = _allowed_brute(ids[b].reshape(-1), policy)
        np.testing.assert_array_equal(~blocked[b, 0].numpy(), expected)
        assert not blocked[b, 0].diagonal().any()  # no row is ever empty


def test_neighbor_mask_matches_definition():
    assert torch.equal(~neighbor_mask((3, 4), 0)[0, 0], torch.eye(13, dtype=torch.bool))
    blocked = neighbor_mask((3, 4), 1)[0, 0].numpy()
    coords = [(y, x) for y in range(3) for x in range(4)]
    for i, (yi, xi) in enumerate(coords):
        for j, (yj, xj) in enumerate(coords):
            assert (not blocked[i + 1, j + 1]) == (max(abs(yi - yj), abs(xi - xj)) <= 1)
    assert not blocked[0, 0] and blocked[0, 1:].all() and blocked[1:, 0].all()  # CLS isolated


def test_block_masks_share_and_check_levels():
    ids = torch.zeros(2, 2, 3, 3, dtype=torch.int64)
    schedule = [Rule("global"), Rule("segment", 1), Rule("segment", 1), Rule("neighbor", 0)]
    masks = block_masks(schedule, ids, (3, 3))
    assert masks[0] is None and masks[1] is masks[2] and masks[3].shape == (1, 1, 10, 10)
    with pytest.raises(ValueError, match="levels 0..3 but the mask generator gave 2"):
        block_masks(default_schedule(8), ids, (3, 3))
    with pytest.raises(ValueError, match="gave 0 level"):
        block_masks(default_schedule(8), None, (3, 3))
