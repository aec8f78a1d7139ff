"""Training a student: the families (students), distillation, augmented views, pruning, quantization
and the int8 encodings a shipped file can take."""
