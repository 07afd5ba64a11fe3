"""Keyword search in Chinese, Japanese and Korean notes: character bigrams in the unicode61
table (what search.storage.keywords does) against FTS5's `trigram` tokenizer.

    .venv/bin/python bench/cjk_keywords.py [--scale 400]

Corpus: 24 short paper notes written for this benchmark (10 Chinese, 7 Japanese, 7 Korean,
about machine-learning topics, the way a reader would write them). Queries, two kinds:
  - every CJK substring of 2, 3 and 4 characters that occurs in exactly one note (a word or
    phrase only that note has): hit = that note ranked first;
  - 24 questions written as a reader would ask them (one per note, no spaces in zh/ja).
Trigram queries: every trigram of each CJK run OR-ed (runs shorter than 3 characters cannot be
looked up, FTS5 returns nothing for them); bigram queries: search.storage.keywords.query_terms.
Speed and size: the corpus repeated --scale times (distinct rowids), index build time, size
(sum of the FTS shadow tables' pages) and median query time, both in the same run.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.storage.keywords import _CJK_RUN, fts_query, query_terms, split_cjk  # noqa: E402

NOTES = [
    "对比学习通过拉近正样本、推远负样本来学习图像表示，数据增强非常关键。",
    "残差网络用跳跃连接解决了深层网络的退化问题，训练一百多层也能收敛。",
    "注意力机制让模型在翻译时关注源句子中相关的词，取代了循环神经网络。",
    "知识蒸馏用大模型的软标签训练小模型，压缩后精度下降很少。",
    "图神经网络在节点之间传递消息，适合分子性质预测和推荐系统。",
    "扩散模型逐步去噪生成图像，采样速度慢但质量很高。",
    "强化学习中的策略梯度方法方差较大，需要基线来稳定训练。",
    "批归一化加快了训练速度，但小批量时统计量不稳定。",
    "目标检测的两阶段方法先生成候选框，再分类和回归边框。",
    "语言模型预训练后再微调，在问答和文本分类任务上效果显著。",
    "自己教師あり学習では、ラベルなしデータから特徴表現を学習する。",
    "深層学習モデルの量子化により、推論時のメモリ使用量を削減できる。",
    "敵対的生成ネットワークは生成器と識別器を競わせて画像を生成する。",
    "ベイズ最適化はハイパーパラメータ探索の試行回数を減らす。",
    "点群の分類には順序に依存しないネットワーク構造が必要である。",
    "音声認識では、連続する音響特徴を文字列に変換する。",
    "転移学習により、少ないデータでも高い精度を達成できる。",
    "대조학습은 양성 쌍을 가깝게, 음성 쌍을 멀게 하여 표현을 학습한다.",
    "트랜스포머는 어텐션 메커니즘만으로 기계 번역 성능을 크게 높였다.",
    "그래프 신경망은 노드 사이의 메시지 전달로 분자 특성을 예측한다.",
    "강화학습 에이전트는 보상을 최대화하도록 정책을 업데이트한다.",
    "의료 영상 분할에는 유넷 구조가 널리 쓰인다.",
    "연합학습은 데이터를 서버로 보내지 않고 모델을 공동으로 학습한다.",
    "모델 압축을 위한 가지치기는 중요하지 않은 가중치를 제거한다.",
]
QUESTIONS = [
    "对比学习的数据增强",
    "跳跃连接解决退化",
    "翻译中的注意力",
    "软标签压缩模型",
    "分子性质预测",
    "去噪生成图像",
    "策略梯度的方差",
    "小批量统计量",
    "候选框回归",
    "预训练微调问答",
    "ラベルなしデータで学習",
    "推論のメモリ削減",
    "生成器と識別器",
    "ハイパーパラメータ探索",
    "点群分類",
    "音声を文字列に",
    "少ないデータで転移",
    "양성 쌍과 음성 쌍",
    "기계 번역 어텐션",
    "분자 특성 예측",
    "보상 최대화 정책",
    "영상 분할 구조",
    "서버로 보내지 않는 학습",
    "가중치 제거 가지치기",
]


def trigram_query(text: str) -> str | None:
    grams: list[str] = []
    for run in _CJK_RUN.findall(text):
        grams += [run[i : i + 3] for i in range(len(run) - 2)]
    for word in re.findall(r"\w+", _CJK_RUN.sub(" ", text)):
        if len(word) >= 3:
            grams.append(word)
    return fts_query(dict.fromkeys(grams)) if grams else None


def bigram_query(text: str) -> str | None:
    terms = query_terms(text)
    return fts_query(terms) if terms else None


def build(kind: str, docs: list[str]) -> tuple[sqlite3.Connection, float]:
    db = sqlite3.connect(":memory:")
    tok = "porter unicode61 remove_diacritics 2" if kind == "bigram" else "trigram"
    t = time.perf_counter()
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, tokenize='{tok}')")
    db.executemany(
        "INSERT INTO t(rowid, body) VALUES (?, ?)",
        ((i, split_cjk(d) if kind == "bigram" else d) for i, d in enumerate(docs)),
    )
    db.commit()
    return db, time.perf_counter() - t


def top(db: sqlite3.Connection, q: str | None) -> int | None:
    if q is None:
        return None
    row = db.execute(
        "SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 1", (q,)
    ).fetchone()
    return None if row is None else int(row[0]) % len(NOTES)


def unique_substrings(n: int) -> list[tuple[str, int]]:
    out = []
    for i, note in enumerate(NOTES):
        seen = set()
        for run in _CJK_RUN.findall(note):
            for j in range(len(run) - n + 1):
                s = run[j : j + n]
                if s not in seen and sum(s in other for other in NOTES) == 1:
                    seen.add(s)
                    out.append((s, i))
    return out


def size_bytes(db: sqlite3.Connection) -> int:
    return int(
        db.execute(
            "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size"
        ).fetchone()[0]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=400)
    args = ap.parse_args()
    result: dict = {"notes": len(NOTES)}
    queries = {f"unique_{n}_chars": unique_substrings(n) for n in (2, 3, 4)}
    queries["questions"] = [(q, i) for i, q in enumerate(QUESTIONS)]
    make = {"bigram": bigram_query, "trigram": trigram_query}
    for kind in ("bigram", "trigram"):
        db, _ = build(kind, NOTES)
        scores = {}
        for name, qs in queries.items():
            hits = sum(top(db, make[kind](q)) == i for q, i in qs)
            scores[name] = f"{hits}/{len(qs)} ({hits / len(qs):.0%})"
        big, seconds = build(kind, NOTES * args.scale)
        times = []
        for q, _ in queries["questions"] * 3:
            t = time.perf_counter()
            top(big, make[kind](q))
            times.append(time.perf_counter() - t)
        result[kind] = {
            "top1": scores,
            f"index_{len(NOTES) * args.scale}_docs_s": round(seconds, 3),
            "index_mb": round(size_bytes(big) / 2**20, 2),
            "median_query_ms": round(statistics.median(times) * 1000, 2),
        }
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
