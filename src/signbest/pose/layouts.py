"""Where the triplet unit's 49 joints sit in each keypoint layout people already have.

Body order is always: nose, left shoulder, left elbow, left wrist, right shoulder, right elbow,
right wrist. Hands use the 21-point order shared by MediaPipe, OpenPose and COCO-WholeBody
(wrist, then thumb, index, middle, ring, little finger from base to tip).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    name: str  # human readable name, used in error messages and metadata
    num_points: int  # keypoints per frame in this layout
    body: tuple[int, ...]  # indices of the 7 body joints
    left: tuple[int, ...]  # indices of the 21 left-hand joints
    right: tuple[int, ...]  # indices of the 21 right-hand joints


def _hand(start: int) -> tuple[int, ...]:
    return tuple(range(start, start + 21))


# COCO-WholeBody 133 (MMPose / RTMPose): 17 body, 6 feet, 68 face, 21 left hand, 21 right hand.
COCO_WHOLEBODY = Layout("coco-wholebody-133", 133, (0, 5, 7, 9, 6, 8, 10), _hand(91), _hand(112))
# OpenPose BODY_25 followed by the two 21-point hands, as WLASL's released keypoints are concatenated.
OPENPOSE_BODY25 = Layout("openpose-body25", 25 + 42, (0, 5, 6, 7, 2, 3, 4), _hand(25), _hand(46))
# MediaPipe Holistic pose (33) followed by left and right hand (21 each).
MEDIAPIPE_HOLISTIC = Layout("mediapipe-holistic", 33 + 42, (0, 11, 13, 15, 12, 14, 16), _hand(33), _hand(54))

# Point names used to select joints by name inside .pose files (pose-format components).
MEDIAPIPE_BODY_NAMES = ("NOSE", "LEFT_SHOULDER", "LEFT_ELBOW", "LEFT_WRIST",
                        "RIGHT_SHOULDER", "RIGHT_ELBOW", "RIGHT_WRIST")
OPENPOSE_BODY_NAMES = ("Nose", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist")
# component name -> (part, joint names or None for "all 21 in order")
POSE_FORMAT_COMPONENTS = {
    "POSE_LANDMARKS": ("body", MEDIAPIPE_BODY_NAMES),
    "LEFT_HAND_LANDMARKS": ("left", None),
    "RIGHT_HAND_LANDMARKS": ("right", None),
    "pose_keypoints_2d": ("body", OPENPOSE_BODY_NAMES),
    "hand_left_keypoints_2d": ("left", None),
    "hand_right_keypoints_2d": ("right", None),
}
