# "Is this house expensive?" from its floor area (square feet) and age (years), with a
# sigmoid network in raw PyTorch tensors, as the autograd-from-scratch tutorials write it:
# no nn.Module, no optimizer, a binary cross-entropy typed out by hand, and an update
# that rebinds each parameter to a new tensor every step.
import torch

torch.manual_seed(0)
area = torch.rand(200, 1) * 2900 + 600
age = torch.rand(200, 1) * 80
X = torch.cat([area, age], dim=1)
Y = ((area / 1000 - age / 40 + 0.3 * torch.randn(200, 1)) > 1.0).float()

W1 = (torch.randn(2, 8) * 0.5).requires_grad_()
b1 = torch.zeros(8, requires_grad=True)
W2 = (torch.randn(8, 1) * 0.5).requires_grad_()
b2 = torch.zeros(1, requires_grad=True)
lr = 0.5

for epoch in range(300):
    h = torch.sigmoid(X @ W1 + b1)
    p = torch.sigmoid(h @ W2 + b2).clamp(1e-6, 1 - 1e-6)
    loss = -(Y * torch.log(p) + (1 - Y) * torch.log(1 - p)).mean()
    loss.backward()
    with torch.no_grad():
        W1 = W1 - lr * W1.grad
        b1 = b1 - lr * b1.grad
        W2 = W2 - lr * W2.grad
        b2 = b2 - lr * b2.grad
    for t in (W1, b1, W2, b2):
        t.requires_grad_()
    if epoch % 100 == 0:
        print(f"epoch {epoch:3d}  loss {loss.item():.4f}")

accuracy = ((p > 0.5).float() == Y).float().mean().item()
print("final_loss", round(loss.item(), 4))
print("final_accuracy", round(accuracy, 3))
