"""Measuring an exported file from disk: size, latency beside the teacher, accuracy through LiteRT
(tflite.py), and the scoring that the trial, the finalists, the export and `compress.verify` share."""
