"""Switchyard: a sparse Mixture-of-Experts inference engine for ONNX models.

    import switchyard
    session = switchyard.InferenceSession("model.onnx", threads=2, hint="latency")
    logits, = session.run(None, {"image": images})            # like onnxruntime.InferenceSession

    queue = switchyard.AsyncInferQueue(session, jobs=4)        # like openvino.AsyncInferQueue
    queue.set_callback(lambda request, userdata: print(userdata, request.outputs[0].argmax()))
    for i, image in enumerate(images):
        queue.start_async({"image": image[None]}, i)
    queue.wait_all()
"""
from ._switchyard import AsyncInferQueue, InferenceSession, InferRequest, NodeArg, SwitchyardError, kernel_isa

__all__ = ["InferenceSession", "AsyncInferQueue", "InferRequest", "NodeArg", "SwitchyardError", "kernel_isa"]
