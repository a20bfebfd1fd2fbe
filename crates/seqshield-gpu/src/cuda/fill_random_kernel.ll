; The random-fill kernel's entry point for nvptx64: one thread per word,
; in a grid-stride loop, over the target-independent body in
; fill_random_body.ll. scripts/gen-ptx links the two and compiles them to
; fill_random.ptx. LLVM 14 syntax: typed pointers.
;
; The PTX parameter list is exactly three .param .u64 (ptr, len, seed), what
; src/cuda/driver.rs passes to cuLaunchKernel. ptr is declared i8*, not i64:
; llc emits a kernel's pointer parameter as .param .u64 and, for CUDA, knows
; it points to global memory (cvta.to.global), so the stores are st.global.

target datalayout = "e-i64:64-i128:128-v16:16-v32:32-n16:32:64"
target triple = "nvptx64-nvidia-cuda"

declare void @seqshield_fill_range(i8*, i64, i64, i64, i64)

declare i32 @llvm.nvvm.read.ptx.sreg.ctaid.x() nounwind readnone
declare i32 @llvm.nvvm.read.ptx.sreg.ntid.x() nounwind readnone
declare i32 @llvm.nvvm.read.ptx.sreg.tid.x() nounwind readnone
declare i32 @llvm.nvvm.read.ptx.sreg.nctaid.x() nounwind readnone

; Fills len bytes at ptr (a device address from cuMemAlloc, 8-byte aligned)
; with the stream for seed; each thread does words
; ctaid.x * ntid.x + tid.x + k * nctaid.x * ntid.x for k = 0, 1, ...
define void @seqshield_fill_random(i8* %ptr, i64 %len, i64 %seed) nounwind {
  %ctaid = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
  %ntid = call i32 @llvm.nvvm.read.ptx.sreg.ntid.x()
  %tid = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %nctaid = call i32 @llvm.nvvm.read.ptx.sreg.nctaid.x()
  %ctaid64 = zext i32 %ctaid to i64
  %ntid64 = zext i32 %ntid to i64
  %tid64 = zext i32 %tid to i64
  %nctaid64 = zext i32 %nctaid to i64
  %first = mul i64 %ctaid64, %ntid64
  %start = add i64 %first, %tid64
  %stride = mul i64 %nctaid64, %ntid64
  call void @seqshield_fill_range(i8* %ptr, i64 %len, i64 %seed, i64 %start, i64 %stride)
  ret void
}

!nvvm.annotations = !{!0}
!0 = !{void (i8*, i64, i64)* @seqshield_fill_random, !"kernel", i32 1}
