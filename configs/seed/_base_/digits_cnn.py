# The "original training config" that the seed's examples put in `_base_`: data, schedule and
# runtime of a plain run on scikit-learn's digits. Each example in this folder extends it.
data = dict(type='digits', resize=16)
train = dict(epochs=2, batch_size=64, lr=0.1, optimizer='SGD', lr_schedule='cosine')
runtime = dict(seed=0, log_interval=10)
