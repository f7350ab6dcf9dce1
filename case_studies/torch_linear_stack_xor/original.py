# XOR with a "two-layer" torch network: Linear -> Linear, logits into BCEWithLogitsLoss.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = torch.tensor([[0.0], [1.0], [1.0], [0.0]])

model = nn.Sequential(
    nn.Linear(2, 8),
    nn.Linear(8, 1),
)
loss_fn = nn.BCEWithLogitsLoss()
opt = torch.optim.Adam(model.parameters(), lr=0.05)
for epoch in range(300):
    opt.zero_grad()
    loss = loss_fn(model(X), Y)
    loss.backward()
    opt.step()
print("outputs", torch.sigmoid(model(X)).detach().squeeze(1).numpy().round(3))
print("final_loss", loss.item())
