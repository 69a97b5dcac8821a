"""Video -> pose: MediaPipe Holistic extraction (optional extra `signbest[video]`), hand recovery, batch runs."""
