"""The official UDOS protocol on hand-computed cases."""

import math

import numpy as np
import pytest

from lmf_gs.data.udos import gt_from_labels
from lmf_gs.eval.udos_metric import (
    VideoResult,
    frame_ap,
    layered_prediction,
    mean_over_videos,
    score_video,
)


def test_ap_hand_computed():
    # scores 0.9 0.8 0.7 0.6, labels 1 0 1 0: AP = 0.5*1 + 0.5*(2/3)
    gt = gt_from_labels(np.array([[255, 0, 255, 0]]), "dynamic")
    pred = np.array([[0.9, 0.8, 0.7, 0.6]])
    assert frame_ap(gt, pred) == pytest.approx(100 * (0.5 + 0.5 * 2 / 3))


def test_ap_with_ties():
    # (0.5, 1), (0.5, 0), (0.2, 1): threshold 0.5 -> P 1/2, R 1/2; 0.2 -> P 2/3, R 1
    gt = gt_from_labels(np.array([[1, 0, 1]]), "dynamic")
    assert frame_ap(gt, np.array([[0.5, 0.5, 0.2]])) == pytest.approx(100 * (0.25 + 0.5 * 2 / 3))


def test_semistatic_ignores_label_2():
    labels = np.array([[1, 2, 0, 2]])
    # label-2 pixels carry the highest scores but are dropped: remaining (0.5,1), (0.1,0) -> AP 1
    pred = np.array([[0.5, 0.99, 0.1, 0.98]])
    assert frame_ap(gt_from_labels(labels, "semistatic"), pred) == pytest.approx(100.0)
    # if they were counted as negatives AP would be 1/3
    gt_dyn = gt_from_labels((labels == 1).astype(float), "dynamic")
    assert frame_ap(gt_dyn, pred) == pytest.approx(100 / 3)


def test_dynamic_semistatic_counts_body_parts_as_positive():
    labels = np.array([[3, 1, 0, 2, 0]])
    gt = gt_from_labels(labels, "dynamic_semistatic")
    np.testing.assert_array_equal(gt.positive, [[1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(gt.evaluated, [[1, 1, 1, 0, 1]])
    # positives at 0.9 and 0.2, negatives 0.5 and 0.1: P@0.9=1 (R .5), P@0.2=2/3 (R 1)
    pred = np.array([[0.9, 0.2, 0.5, 1.0, 0.1]])
    assert frame_ap(gt, pred) == pytest.approx(100 * (0.5 + 0.5 * 2 / 3))


def test_divide_by_255_only_when_max_is_255():
    # semistatic stored raw 0/1/2 must not be divided
    gt = gt_from_labels(np.array([[0, 1, 2]]), "semistatic")
    np.testing.assert_array_equal(gt.positive, [[0, 1, 0]])
    # a 0/255 dynamic mask becomes 0/1
    gt = gt_from_labels(np.array([[0, 255]]), "dynamic")
    np.testing.assert_array_equal(gt.positive, [[0, 1]])
    # a 0/255 semistatic mask: 255 -> 1 positive; no 2s survive
    gt = gt_from_labels(np.array([[0, 255]]), "semistatic")
    np.testing.assert_array_equal(gt.positive, [[0, 1]])


def test_frames_without_positives_are_skipped():
    gt = gt_from_labels(np.array([[0, 2, 0]]), "semistatic")
    assert frame_ap(gt, np.array([[0.1, 0.2, 0.3]])) is None


def test_prediction_resized_to_gt():
    gt = gt_from_labels(np.kron(np.array([[1, 0], [0, 0]]), np.ones((4, 4))), "dynamic")
    pred = np.array([[1.0, 0.0], [0.0, 0.0]])  # 2x2 -> 8x8 bilinear keeps the ranking
    assert frame_ap(gt, pred) == pytest.approx(100.0)


def test_video_and_multi_video_means():
    frames = ["a", "b", "c"]
    labels = {
        "a": np.array([[1, 0]]),
        "b": np.array([[0, 0]]),  # no positive anywhere: skipped
        "c": np.array([[1, 0]]),
    }
    preds = {"a": np.array([[0.9, 0.1]]), "b": np.array([[0.9, 0.1]]), "c": np.array([[0.1, 0.9]])}

    def load_gt(motion, frame):
        return gt_from_labels(labels[frame], motion)

    res = score_video("V", "m", "within_action", frames, load_gt,
                      lambda f: dict.fromkeys(("dynamic", "semistatic", "dynamic_semistatic"),
                                              preds[f]))
    assert set(res.per_frame["dynamic"]) == {"a", "c"}
    assert res.map["dynamic"] == pytest.approx((100 + 50) / 2)
    doc = res.to_json()
    assert doc["frames"]["dynamic"] == {"total": 3, "scored": 2, "skipped_no_positive": 1}
    empty = VideoResult("W", "m", "within_action", {}, 0)
    assert math.isnan(empty.map["dynamic"]) and empty.to_json()["map"]["dynamic"] is None
    assert mean_over_videos([res.map["dynamic"], empty.map["dynamic"]]) == pytest.approx(37.5)


def test_layered_mapping():
    dyn, ss = np.array([[0.2]]), np.array([[0.5]])
    p = layered_prediction(dyn, ss)
    assert p["dynamic"] is dyn and p["semistatic"][0, 0] == p["dynamic_semistatic"][0, 0] == 0.7
