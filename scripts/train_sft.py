"""Fine-tune a causal LM on an SFT set from `cligym export-sft`, fully or with LoRA, with TRL's SFTTrainer.

    .venv/bin/python scripts/train_sft.py --dataset sft/ --model MODEL_DIR --out run/ [--lora] [--max-steps 100]

A dataset that is not tokenized yet is tokenized here with the model's chat template (loss on assistant tokens only).
Runs on CPU when no GPU is visible. Writes the model (or the LoRA adapter), its tokenizer and `train_result.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="folder written by `cligym export-sft`")
    parser.add_argument("--model", required=True, help="Hugging Face model folder or name to start from")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lora", action="store_true", help="train a LoRA adapter instead of every weight")
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (-1: --epochs)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=None, help="truncate examples to this many tokens")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from agents.sft import tokenize

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    dataset = load_from_disk(str(args.dataset))
    if "input_ids" not in dataset.column_names:
        dataset = tokenize(dataset, tokenizer, args.max_length)
    dataset = dataset.select_columns(["input_ids", "labels"])  # TRL keeps our labels (assistant tokens only)
    peft_config = None
    if args.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=args.lora_rank, lora_alpha=2 * args.lora_rank, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    config = SFTConfig(output_dir=str(args.out), max_steps=args.max_steps, num_train_epochs=args.epochs,
                       learning_rate=args.lr, per_device_train_batch_size=args.batch_size,
                       gradient_accumulation_steps=args.grad_accum, max_length=args.max_length,
                       logging_steps=1, save_strategy="no", report_to="none", seed=args.seed,
                       use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available())
    model = AutoModelForCausalLM.from_pretrained(args.model)
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    result = trainer.train()
    trainer.save_model(str(args.out))
    tokenizer.save_pretrained(str(args.out))
    summary = {"steps": result.global_step, "train_loss": result.training_loss, "examples": len(dataset),
               "lora": args.lora, "losses": [log["loss"] for log in trainer.state.log_history if "loss" in log]}
    (args.out / "train_result.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
