"""Hand-written torch regression whose gradients are never cleared (tests: ND704)."""
import sys

import torch

torch.manual_seed(0)
x = torch.linspace(0, 1, 32).unsqueeze(1)
y = 2 * x + 1
w = torch.randn(1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
for step in range(60):
    loss = ((w * x + b - y) ** 2).mean()
    loss.backward()
    w.data.sub_(0.05 * w.grad)
    b.data.sub_(0.05 * b.grad)
    if "--zero" in sys.argv:
        w.grad.zero_()
        b.grad.zero_()
print("final_loss", loss.item())
