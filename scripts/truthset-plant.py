#!/usr/bin/env python3
"""Plants known variants into a prefix of a genome (helper of scripts/truthset).

    truthset-plant.py GENOME.fa[.gz] LENGTH SEED OUTDIR

Writes, in OUTDIR:
  ref.fa      the first LENGTH bp of the first record, renamed to its accession
              (NC_008253.1), 60 columns;
  mutated.fa  the same sequence with the planted variants applied;
  truth.vcf   the planted variants against ref.fa, sorted, haploid GT 1.

Variants: about one per 5 kbp (LENGTH // 5000 of them), ~80% SNPs and ~20%
indels (half insertions, half deletions, 1-10 bp), drawn from a
random.Random(SEED), so the same arguments give the same bytes. Indels are
shifted to their left-aligned position (the VCF normal form) before any
spacing check; no two variants' REF spans come within 50 bp of each other, and
none comes within 50 bp of either end. Python 3 standard library only.
"""

import gzip
import random
import sys

SPACING = 50          # min distance between variants, and to either end
BP_PER_VARIANT = 5000
INDEL_FRACTION = 0.2
MAX_INDEL = 10
BASES = "ACGT"
COLUMNS = 60


def read_first_record(path, length):
    opener = gzip.open if path.endswith(".gz") else open
    name, chunks, have = None, [], 0
    with opener(path, "rt") as f:
        for line in f:
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    break
                name = line[1:].split()[0]
                continue
            chunks.append(line.upper())
            have += len(line)
            if have >= length:
                break
    seq = "".join(chunks)[:length]
    if name is None or len(seq) < length:
        sys.exit(f"truthset-plant: {path}: first record shorter than {length} bp")
    # NCBI's old "gi|N|ref|ACC|" ids: keep the accession.
    parts = name.split("|")
    if len(parts) >= 4 and parts[2] == "ref":
        name = parts[3]
    if set(seq) - set(BASES):
        sys.exit(f"truthset-plant: non-ACGT bases in the first {length} bp of {path}")
    return name, seq


def left_align_deletion(ref, p, n):
    """Deletion of ref[p:p+n]; returns the leftmost equivalent start."""
    while p > 1 and ref[p - 1] == ref[p + n - 1]:
        p -= 1
    return p


def left_align_insertion(ref, p, ins):
    """Insertion of ins before ref[p]; returns the leftmost equivalent (p, ins)."""
    while p > 1 and ref[p - 1] == ins[-1]:
        ins = ins[-1] + ins[:-1]
        p -= 1
    return p, ins


def draw(ref, rng, count):
    """Returns [(pos0, REF, ALT)] sorted, with pos0 the 0-based VCF position."""
    length = len(ref)
    taken = []  # (start, end) of REF spans, 0-based half-open
    variants = []
    attempts = 0
    while len(variants) < count:
        attempts += 1
        if attempts > 100 * count:
            sys.exit("truthset-plant: could not place the variants (sequence too short?)")
        r = rng.random()
        if r >= INDEL_FRACTION:
            p = rng.randrange(SPACING, length - SPACING)
            refb = ref[p]
            alt = rng.choice([b for b in BASES if b != refb])
            var = (p, refb, alt)
        else:
            n = rng.randint(1, MAX_INDEL)
            if r < INDEL_FRACTION / 2:  # deletion of n bases after the anchor
                p = rng.randrange(SPACING + 1, length - SPACING - n)
                p = left_align_deletion(ref, p, n)
                var = (p - 1, ref[p - 1:p + n], ref[p - 1])
            else:                      # insertion of n random bases
                p = rng.randrange(SPACING + 1, length - SPACING)
                ins = "".join(rng.choice(BASES) for _ in range(n))
                p, ins = left_align_insertion(ref, p, ins)
                var = (p - 1, ref[p - 1], ref[p - 1] + ins)
        start, end = var[0], var[0] + len(var[1])
        if start < SPACING or end > length - SPACING:
            continue
        if any(start < e + SPACING and s < end + SPACING for s, e in taken):
            continue
        taken.append((start, end))
        variants.append(var)
    variants.sort()
    return variants


def write_fasta(path, name, desc, seq):
    with open(path, "w") as f:
        f.write(f">{name} {desc}\n")
        for i in range(0, len(seq), COLUMNS):
            f.write(seq[i:i + COLUMNS] + "\n")


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    genome, length, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    name, ref = read_first_record(genome, length)
    rng = random.Random(seed)
    variants = draw(ref, rng, max(1, length // BP_PER_VARIANT))

    pieces, last = [], 0
    for pos, r, a in variants:
        assert ref[pos:pos + len(r)] == r
        pieces.append(ref[last:pos])
        pieces.append(a)
        last = pos + len(r)
    pieces.append(ref[last:])
    mutated = "".join(pieces)

    write_fasta(f"{out}/ref.fa", name, f"first {length} bp", ref)
    write_fasta(f"{out}/mutated.fa", name, f"first {length} bp, {len(variants)} planted variants (seed {seed})", mutated)
    with open(f"{out}/truth.vcf", "w") as f:
        f.write("##fileformat=VCFv4.2\n")
        f.write(f"##source=seqshield scripts/truthset (seed {seed})\n")
        f.write("##reference=ref.fa\n")
        f.write(f"##contig=<ID={name},length={length}>\n")
        f.write('##INFO=<ID=VT,Number=1,Type=String,Description="Planted variant type: SNP, INS or DEL">\n')
        f.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        f.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ttruth\n")
        for i, (pos, r, a) in enumerate(variants, 1):
            vt = "SNP" if len(r) == len(a) else ("INS" if len(a) > len(r) else "DEL")
            f.write(f"{name}\t{pos + 1}\tv{i}\t{r}\t{a}\t.\tPASS\tVT={vt}\tGT\t1\n")
    snps = sum(1 for _, r, a in variants if len(r) == len(a))
    print(f"{name} {length} {len(variants)} {snps} {len(variants) - snps}")


if __name__ == "__main__":
    main()
