"""Pose layer: readers for every supported keypoint layout, the triplet unit and its normalisation."""
from .normalize import NormalizeConfig, NormalizedPose, normalize
from .readers import read_pose
from .sequence import BODY_JOINTS, HAND_JOINTS, PARTS, PoseError, PoseSequence, fix_handedness

__all__ = ["BODY_JOINTS", "HAND_JOINTS", "PARTS", "NormalizeConfig", "NormalizedPose", "PoseError",
           "PoseSequence", "fix_handedness", "normalize", "read_pose"]
