"""Samudra 2 ocean emulator on NumPy (CPU) and CuPy (GPU) with a hand-written backward.

Sub-modules
-----------
backend   array-module selection and primitive kernels (im2col, GELU, norms)
layers    layers with forward and backward passes
unet      the Samudra 2 U-Net
losses    masked per-channel MSE and the dynamic loss
optim     Adam, cosine schedule, gradient clipping, EMA of the weights
data      channels, normalisation over wet points, rollout samples, splits
training  rollout training with backpropagation through time, checkpoints
rollout   autoregressive rollouts
metrics   evaluation metrics (R^2 per depth band, RMSE, variance ratios, spectra)
plots     PNG figures
make_data data generation from stommel's ACC model
cli       ``stommel emulator make-data | train | rollout | evaluate``
"""
