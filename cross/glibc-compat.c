/* Keeps the aarch64 binary within glibc 2.34 (cross/linker links this in).
 *
 * glibc 2.35 gave hypot and hypotf new symbol versions (GLIBC_2.35: the same
 * function without the old SVID error handling). Debian 12's cross libm makes every
 * caller (Rust's f64::hypot/f32::hypot, used by the chart rasteriser) need
 * GLIBC_2.35. The linker is run with --wrap=hypot --wrap=hypotf, so those calls land
 * here and go to the GLIBC_2.17 versions, present in every aarch64 glibc. For finite
 * arguments both compute the same correctly rounded result; the old one also sets
 * errno on overflow, which nothing here reads. */
double hypot_glibc_2_17(double, double);
float hypotf_glibc_2_17(float, float);
__asm__(".symver hypot_glibc_2_17, hypot@GLIBC_2.17");
__asm__(".symver hypotf_glibc_2_17, hypotf@GLIBC_2.17");

double __wrap_hypot(double x, double y) { return hypot_glibc_2_17(x, y); }
float __wrap_hypotf(float x, float y) { return hypotf_glibc_2_17(x, y); }
