"""`conceptfreq export-triton`: a Triton model repository for GPU backends (ONNX image tower)."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-triton", help="write a Triton repository for GPU backends: the image tower as ONNX, fp16, dynamic batching",
        description="Export the open_clip image tower to ONNX with a config.pbtxt for Triton's onnxruntime backend on GPUs "
                    "(KIND_GPU, dynamic batching, fp16 through TensorRT), plus the text tower as a python-backend model. "
                    "TENSORRT.md in the output says how to build a TensorRT plan instead.")
    parser.add_argument("--model", required=True, metavar="NAME", help="open_clip model, e.g. ViT-B-32, ViT-L-14")
    parser.add_argument("--pretrained", default=None, metavar="TAG|FILE",
                        help="an open_clip tag (e.g. laion400m_e32), a checkpoint file, or 'random'")
    parser.add_argument("--format", default="onnx", choices=["onnx"], help="model format (default onnx)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the model repository directory (created if needed)")
    parser.add_argument("--precision", default="fp16", choices=["fp16", "fp32"],
                        help="fp16: TensorRT accelerator at FP16 in config.pbtxt (default); fp32: plain onnxruntime")
    parser.add_argument("--fp16-weights", action="store_true",
                        help="also convert the ONNX weights to fp16 (fp32 inputs/outputs), for the CUDA provider without TensorRT")
    parser.add_argument("--max-batch-size", type=int, default=256, help="largest batch Triton forms (default 256)")
    parser.add_argument("--instances", type=int, default=1, help="model instances per GPU (default 1)")
    parser.add_argument("--max-queue-delay-us", type=int, default=2000,
                        help="how long the dynamic batcher waits to fill a batch (default 2000)")
    parser.add_argument("--image-input", default="float32", choices=["float32", "float16", "uint8"],
                        help="the image tower's input on the wire: float32 (default), float16 (half the bytes), or uint8 "
                             "(N, H, W, 3) pixels normalized inside the model (a quarter of the bytes; what GPU clients should send)")
    parser.add_argument("--no-text", action="store_true", help="skip the text tower")
    parser.set_defaults(func=run)


def run(args) -> int:
    from conceptfreq.commands.options import pretrained
    from conceptfreq.tagger.onnx_export import ExportPlan, export_repository

    plan = ExportPlan(args.model, pretrained(args), args.out, format=args.format, precision=args.precision,
                      fp16_weights=args.fp16_weights, max_batch_size=args.max_batch_size, instances=args.instances,
                      max_queue_delay_us=args.max_queue_delay_us, text_tower=not args.no_text,
                      input_format=args.image_input)
    for tower, folder in export_repository(plan).items():
        print(f"{tower}: {folder}")
    return 0
