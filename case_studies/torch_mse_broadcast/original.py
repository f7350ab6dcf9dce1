# Fit a noisy sine with a small torch MLP; the targets are a flat vector.
import torch
import torch.nn as nn

torch.manual_seed(0)
x = torch.linspace(-3, 3, 64).unsqueeze(1)      # (64, 1)
y = torch.sin(x).squeeze(1) + 0.05 * torch.randn(64)  # (64,)

net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
for epoch in range(150):
    optimizer.zero_grad()
    pred = net(x)                                 # (64, 1)
    loss = criterion(pred, y)
    loss.backward()
    optimizer.step()
with torch.no_grad():
    fit = ((net(x).squeeze(1) - y) ** 2).mean()
print("final_loss", loss.item())
print("final_true_mse", fit.item())
