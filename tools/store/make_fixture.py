#!/usr/bin/env python3
"""Writes Tests/LetheStoreTests/Fixtures/torch_state_dict.safetensors with PyTorch + safetensors.

A small CNN's state_dict (conv, batch norm with num_batches_tracked, linear) plus one tensor
of every other dtype the store must keep, saved by the format's reference writer
(safetensors.torch.save_file). The store must import and export it byte-identical.
Needs: pip install torch==2.13.0+cpu safetensors
"""
import hashlib
import pathlib

import torch
from safetensors.torch import save_file

torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
    torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10))
# One training step so running stats and num_batches_tracked are non-trivial.
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 1, 8, 8)), torch.randint(0, 10, (8,)))
loss.backward()
opt.step()
state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
state["extra.half"] = torch.randn(3, 5).to(torch.float16)
state["extra.bfloat"] = torch.randn(7).to(torch.bfloat16)
state["extra.double"] = torch.randn(2, 3, dtype=torch.float64)
state["extra.int32"] = torch.arange(-3, 3, dtype=torch.int32)
state["extra.bytes"] = torch.arange(0, 12, dtype=torch.uint8)
state["extra.mask"] = torch.tensor([True, False, True])
state["extra.scalar"] = torch.tensor(2.5)

out = pathlib.Path(__file__).resolve().parents[2] / "Tests/LetheStoreTests/Fixtures/torch_state_dict.safetensors"
save_file(state, str(out), metadata={"format": "pt"})
print(out, out.stat().st_size, "bytes, sha256", hashlib.sha256(out.read_bytes()).hexdigest())
