"""Training a student: the families (students), distillation, augmented views, pruning, quantization,
the int8 encodings a shipped file can take, and the recipe that a trial and a finalist train by."""
