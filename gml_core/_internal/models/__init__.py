"""Built-in models: the SmallCNN family for digits, and ``torchvision.*`` by name."""
