# Linear regression of fuel use on three standardised car features, with torch.optim.SGD.
import torch
import torch.nn as nn

torch.manual_seed(0)
features = torch.randn(256, 3)                         # weight, power, age (standardised)
true_w = torch.tensor([[1.5], [0.8], [-0.4]])
fuel = features @ true_w + 6.0 + 0.1 * torch.randn(256, 1)

model = nn.Linear(3, 1)
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
losses = []
for step in range(200):
    optimizer.zero_grad()  # FIX: backward() adds to .grad; clear it every step
    loss = loss_fn(model(features), fuel)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % 50 == 0:
        print(step, round(loss.item(), 4))
rises = sum(b > a for a, b in zip(losses, losses[1:]))
print("loss_rises", rises, "of", len(losses) - 1)
print("final_loss", losses[-1])
