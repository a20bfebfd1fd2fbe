; CPU harness for the fill kernel's body (src/cuda/fill_random_body.ll),
; run by tests/ptx.rs: linked with the body by llvm-link-14 (and once more
; after opt-14 -O3), then run as `lli-14 LINKED.bc SEED STRIDE LEN...`.
;
; For each LEN it allocates LEN + 16 bytes, sets them all to 0xA5, calls
; @seqshield_fill_range for every start in 0 .. STRIDE (what a grid of
; STRIDE threads does), and writes all LEN + 16 bytes to stdout: the test
; compares the first LEN with prng::fill and checks the 16 guard bytes
; after them are still 0xA5. Exit status 0, or 1 if malloc or write fails.
; LLVM 14 syntax: typed pointers.

declare void @seqshield_fill_range(i8*, i64, i64, i64, i64)

declare i64 @strtoull(i8*, i8**, i32)
declare i8* @malloc(i64)
declare void @free(i8*)
declare i64 @write(i32, i8*, i64)
declare void @llvm.memset.p0i8.i64(i8*, i8, i64, i1)

; Guard bytes after each buffer, and their value.
@guard = internal constant i64 16
@poison = internal constant i8 -91 ; 0xA5

; argv[n] as an unsigned decimal.
define internal i64 @arg(i8** %argv, i32 %n) {
  %slot = getelementptr inbounds i8*, i8** %argv, i32 %n
  %text = load i8*, i8** %slot
  %value = call i64 @strtoull(i8* %text, i8** null, i32 10)
  ret i64 %value
}

; Writes %len bytes at %p to stdout, looping on partial writes; 0 or 1.
define internal i32 @write_all(i8* %p, i64 %len) {
entry:
  br label %check

check:
  %at = phi i8* [ %p, %entry ], [ %at_next, %wrote ]
  %left = phi i64 [ %len, %entry ], [ %left_next, %wrote ]
  %done = icmp eq i64 %left, 0
  br i1 %done, label %ok, label %write

write:
  %n = call i64 @write(i32 1, i8* %at, i64 %left)
  %failed = icmp sle i64 %n, 0
  br i1 %failed, label %fail, label %wrote

wrote:
  %at_next = getelementptr inbounds i8, i8* %at, i64 %n
  %left_next = sub i64 %left, %n
  br label %check

ok:
  ret i32 0

fail:
  ret i32 1
}

; One case: fill %len bytes as %stride threads would, write them and the
; guard bytes; 0 or 1.
define internal i32 @run_case(i64 %seed, i64 %stride, i64 %len) {
entry:
  %guard = load i64, i64* @guard
  %poison = load i8, i8* @poison
  %size = add i64 %len, %guard
  %buf = call i8* @malloc(i64 %size)
  %no_buf = icmp eq i8* %buf, null
  br i1 %no_buf, label %fail, label %poisoned

poisoned:
  call void @llvm.memset.p0i8.i64(i8* %buf, i8 %poison, i64 %size, i1 false)
  br label %thread

thread:
  %start = phi i64 [ 0, %poisoned ], [ %start_next, %thread ]
  call void @seqshield_fill_range(i8* %buf, i64 %len, i64 %seed, i64 %start, i64 %stride)
  %start_next = add i64 %start, 1
  %more = icmp ult i64 %start_next, %stride
  br i1 %more, label %thread, label %output

output:
  %status = call i32 @write_all(i8* %buf, i64 %size)
  call void @free(i8* %buf)
  ret i32 %status

fail:
  ret i32 1
}

; main(argc, argv): argv = [_, SEED, STRIDE, LEN...]; STRIDE >= 1.
define i32 @main(i32 %argc, i8** %argv) {
entry:
  %seed = call i64 @arg(i8** %argv, i32 1)
  %stride = call i64 @arg(i8** %argv, i32 2)
  br label %check

check:
  %n = phi i32 [ 3, %entry ], [ %n_next, %next ]
  %done = icmp sge i32 %n, %argc
  br i1 %done, label %ok, label %case

case:
  %len = call i64 @arg(i8** %argv, i32 %n)
  %status = call i32 @run_case(i64 %seed, i64 %stride, i64 %len)
  %failed = icmp ne i32 %status, 0
  br i1 %failed, label %fail, label %next

next:
  %n_next = add i32 %n, 1
  br label %check

ok:
  ret i32 0

fail:
  ret i32 1
}
