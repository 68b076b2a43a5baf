"""A registered model's generic MLflow interface (pyfunc), logged as MLflow "models from code".

MLflow stores this file with each logged model and runs it on load; no pickle is executed. It loads the
model's exported graph (torch.export's pt2 file, weights included, no Python class needed) and maps a batch
of images to the reconstruction and the code:

    predict(images: float32 (n, 1, 28, 28) in [0, 1]) -> {"reconstruction": (n, 1, 28, 28), "code": (n, ...)}

`mlflow.pyfunc.load_model(uri)` and `mlflow models serve` use it; `.unwrap_python_model().module` is the
torch module itself, whose forward returns (reconstruction, code). It imports nothing of this package, so a
model serves wherever torch, numpy and mlflow are installed.
"""

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class SparseAutoencoderModel(PythonModel):
    def load_context(self, context):
        import torch

        self.module = torch.export.load(context.artifacts["program"]).module()

    def predict(self, context, model_input: np.ndarray, params=None) -> dict[str, np.ndarray]:
        import torch

        images = torch.from_numpy(np.ascontiguousarray(model_input, dtype=np.float32))
        with torch.no_grad():
            reconstruction, code = self.module(images)
        return {"reconstruction": reconstruction.numpy(), "code": code.numpy()}


mlflow.models.set_model(SparseAutoencoderModel())
