; The random fill's algorithm, target-independent (no triple, no data
; layout) so that the same text is compiled for the GPU by scripts/gen-ptx
; (linked with fill_random_kernel.ll) and run on the CPU by
; crates/seqshield-gpu/tests/ptx.rs (linked with a harness under lli-14).
; LLVM 14 syntax: typed pointers.
;
; It fills len bytes at p with the counter-based SplitMix64 stream of
; crate::prng (prng::fill). Word i of the ceil(len / 8) words is
;
;   mix(seed + (i + 1) * 0x9E3779B97F4A7C15)
;
; where mix is SplitMix64's output function
;
;   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
;   z = (z ^ (z >> 27)) * 0x94D049BB133111EB
;   z ^ (z >> 31)
;
; (all arithmetic modulo 2^64). The word is stored little-endian at byte
; 8 * i; a final partial word (len not a multiple of 8) stores its low
; bytes one at a time, lowest first, so the fill is a prefix of the stream
; whatever len is.
;
; Every word depends only on seed and its index, so the words can be
; computed in any order: @seqshield_fill_range does the words start,
; start + stride, start + 2 * stride, ... (a grid-stride loop; on the GPU
; start is the global thread index and stride the grid's thread count).
; Running it for every start in 0 .. stride writes each word exactly once.
;
; Integer literals in LLVM IR are decimal and signed, so the constants
; above appear below as:
;   0x9E3779B97F4A7C15 = -7046029254386353131
;   0xBF58476D1CE4E5B9 = -4658895280553007687
;   0x94D049BB133111EB = -7723592293110705685
;
; Whole words are stored as i64 with align 8: p must be 8-byte aligned
; (cuMemAlloc returns 256-byte aligned blocks; the CPU harness uses malloc).
; Both targets that run this body (nvptx64 and the host) are little-endian,
; which is what makes an i64 store the stream's little-endian bytes.
; The functions are alwaysinline; @seqshield_fill_range is external so that
; the kernel and the CPU harness can link to it, and scripts/gen-ptx
; internalizes it, so after inlining the PTX has one standalone entry.

; SplitMix64's output function (prng::mix).
define internal i64 @seqshield_mix(i64 %z0) alwaysinline nounwind readnone {
  %s1 = lshr i64 %z0, 30
  %x1 = xor i64 %z0, %s1
  %z1 = mul i64 %x1, -4658895280553007687
  %s2 = lshr i64 %z1, 27
  %x2 = xor i64 %z1, %s2
  %z2 = mul i64 %x2, -7723592293110705685
  %s3 = lshr i64 %z2, 31
  %z3 = xor i64 %z2, %s3
  ret i64 %z3
}

; Word %i of the stream for %seed (prng::word).
define internal i64 @seqshield_word(i64 %seed, i64 %i) alwaysinline nounwind readnone {
  %n = add i64 %i, 1
  %step = mul i64 %n, -7046029254386353131
  %z = add i64 %seed, %step
  %w = call i64 @seqshield_mix(i64 %z)
  ret i64 %w
}

; Writes words %start, %start + %stride, ... of the fill of %len bytes at
; %p with %seed. %stride must be at least 1; %p must be 8-byte aligned.
define void @seqshield_fill_range(i8* %p, i64 %len, i64 %seed, i64 %start, i64 %stride) alwaysinline nounwind {
entry:
  ; full = len / 8 whole words, then one partial word if len % 8 != 0
  ; (computed without len + 7, which could wrap)
  %full = lshr i64 %len, 3
  %tail = and i64 %len, 7
  %has_tail = icmp ne i64 %tail, 0
  %extra = zext i1 %has_tail to i64
  %words = add i64 %full, %extra
  %any = icmp ult i64 %start, %words
  br i1 %any, label %loop, label %done

loop:
  %i = phi i64 [ %start, %entry ], [ %next, %continue ]
  %w = call i64 @seqshield_word(i64 %seed, i64 %i)
  %off = shl i64 %i, 3
  %at = getelementptr inbounds i8, i8* %p, i64 %off
  %whole = icmp ult i64 %i, %full
  br i1 %whole, label %store_word, label %store_tail

store_word:
  %at64 = bitcast i8* %at to i64*
  store i64 %w, i64* %at64, align 8
  br label %continue

store_tail:
  ; i == full and 1 <= tail <= 7: bytes 8 * i .. len, low byte first
  br label %tail_loop

tail_loop:
  %k = phi i64 [ 0, %store_tail ], [ %k_next, %tail_loop ]
  %v = phi i64 [ %w, %store_tail ], [ %v_next, %tail_loop ]
  %byte = trunc i64 %v to i8
  %byte_at = getelementptr inbounds i8, i8* %at, i64 %k
  store i8 %byte, i8* %byte_at, align 1
  %v_next = lshr i64 %v, 8
  %k_next = add i64 %k, 1
  %more = icmp ult i64 %k_next, %tail
  br i1 %more, label %tail_loop, label %continue

continue:
  ; no wrap: i < words <= 2^61 and a grid has at most 2^31 blocks of
  ; 1024 threads, so stride <= 2^41
  %next = add i64 %i, %stride
  %again = icmp ult i64 %next, %words
  br i1 %again, label %loop, label %done

done:
  ret void
}
