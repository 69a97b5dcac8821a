"""Pose layer: readers for every supported keypoint layout, the triplet unit and its normalisation."""
from .normalize import NormalizeConfig, NormalizedPose, normalize
from .readers import read_pose
from .sequence import (BODY_J, BODY_JOINTS, HAND_J, HAND_JOINTS, PART_KINDS, PART_SIZES, PARTS, UNIT_JOINTS,
                       PoseError, PoseSequence, fix_handedness)

__all__ = ["BODY_J", "BODY_JOINTS", "HAND_J", "HAND_JOINTS", "PART_KINDS", "PART_SIZES", "PARTS", "UNIT_JOINTS", "NormalizeConfig", "NormalizedPose", "PoseError",
           "PoseSequence", "fix_handedness", "normalize", "read_pose"]
