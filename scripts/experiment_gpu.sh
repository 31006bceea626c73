#!/usr/bin/env bash
# The four-regime rerun of 2026-12-04 (docs/experiment.md), as run on one GPU machine
# (NVIDIA H200, 16 CPU cores): ppafm simulated on the GPU through the NVIDIA OpenCL
# platform, the structure models and translators trained with --device cuda.
#
#   bash scripts/experiment_gpu.sh translators   # 1. three forward translators (λ_cycle 2, 5, 10)
#   bash scripts/experiment_gpu.sh regimes       # 2. the four regimes + the strength study
#   bash scripts/experiment_gpu.sh longer        # 3. (2026-12-04, later) λ_cycle 0.5/1 and a second seed
#                                                #    of λ_cycle 2; longer and handcrafted-started style/hybrid
#
# Needs: the package installed with ppafm and pyopencl, an OpenCL platform that can build
# ppafm's kernels (NAPARI_AFM_STYLE_OPENCL_PLATFORM picks one), ../shared beside the checkout.
# Every step resumes or skips what is already there; on a CPU the same commands work with
# --device cpu and far more time (about 2 h per regime on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
A="${AFM:-afm-style}"
D="${DATA:-work/data}"; R="${RUNS:-work/runs}"; M="${MODELS:-work/models}"
THEORY="${THEORY:-../shared/data/theory_structures}"; EXP="${EXP:-../shared/data/experiment_like}"
mkdir -p "$D" "$R" "$M"

generate() {  # the four training sets of `pure` v7 (predictor_pure.md), 4 processes each
  local G="--theory-dir $THEORY --theory-subset train --shard-size 32 --tip-k-xy 0.15 0.35 --workers 4 --no-progress"
  $A generate "$D/sim_train_close" -n 768 --seed 0 --theory-fraction 0.35 --closest-offset 2.0 3.8 $G &
  $A generate "$D/sim_train_dft" -n 512 --seed 4000 --theory-fraction 1.0 --theory-mirror \
     --theory-remove-upper 0.0 0.6 --closest-offset 2.0 3.8 $G &
  $A generate "$D/sim_train_close_3d" -n 640 --seed 3000 --theory-fraction 0.7 --closest-offset 2.0 3.8 $G &
  $A generate "$D/sim_train_far" -n 384 --seed 5000 --theory-fraction 1.0 --theory-mirror \
     --theory-remove-upper 0.0 1.0 --closest-offset 2.5 5.0 $G &
  wait
}

train() {  # NAME REGIME-ARGS...: one structure model, fine-tuned from `pure` v7 like every other
  local name=$1; shift
  $A train-predictor --data "$D/sim_train_close" "$D/sim_train_close_3d" "$D/sim_train_dft" "$D/sim_train_far" \
     --val-fraction 0.1 --init-from pure --epochs 4 --batch-size 16 --lr 4e-4 --seed 0 --device cuda \
     --num-threads 1 --no-progress --out "$R/$name" --export "$M/predictor_$name.pt" "$@" > "$R/$name.log" 2>&1 &
}

case "${1:-}" in
  translators)
    generate
    for lc in 2 5 10; do  # 863–874 steps each in the 1.6 min the run allowed (--max-minutes)
      $A train-translator --sim "$D" --exp "$EXP" --out "$R/translator_c$lc" --steps 6000 --batch-size 8 \
         --crop 96 --seed 0 --device cuda --threads 1 --max-minutes 1.6 --lambda-cycle $lc --lambda-identity 0.5 \
         --no-progress > "$R/translator_c$lc.log" 2>&1 &
    done
    wait
    for lc in 2 5 10; do
      python -c "from napari_afm_style.train_translator import export_translator as e; e('$R/translator_c$lc', '$M/translator_c$lc.pt')"
    done ;;
  regimes)
    generate
    T="$M/translator_c2.pt"   # the translator chosen by the style distance (docs/experiment.md)
    train pure --regime pure
    train handcrafted --regime handcrafted
    train style --regime style --style-strength 0.0 1.0 --translator "$T"
    train hybrid --regime hybrid --mix sim=0.25,handcrafted=0.25,style=0.25,style_handcrafted=0.25 \
          --style-strength 0.0 1.0 --translator "$T"
    # the strength study with the session-1 translator (shipped before 2026-12-04)
    for s in 0.25 0.5 0.75 1.0; do train "style_old_s$s" --regime style --style-strength $s $s --translator "${OLD_TRANSLATOR:?}"; done
    train style_old_s0to1 --regime style --style-strength 0.0 1.0 --translator "$OLD_TRANSLATOR"
    train style_old_s05to1 --regime style --style-strength 0.5 1.0 --translator "$OLD_TRANSLATOR"
    wait ;;
  longer)
    generate
    T="$M/translator_c2.pt"
    for spec in "c05 0 0.5" "c1 0 1" "c2L 1 2"; do  # 1683–1715 steps each in 3.2 min
      set -- $spec
      $A train-translator --sim "$D" --exp "$EXP" --out "$R/translator_$1" --steps 20000 --batch-size 8 --crop 96 \
         --seed "$2" --lambda-cycle "$3" --lambda-identity 0.5 --device cuda --threads 1 --max-minutes 3.2 \
         --export "$M/translator_$1.pt" --no-progress > "$R/translator_$1.log" 2>&1 &
    done
    EVEN=sim=0.25,handcrafted=0.25,style=0.25,style_handcrafted=0.25
    # these five ran beside the translators (hc_e8 and hyb_sh reached 7 of 8 epochs in the 6.6 min allowed)
    train hyb_hc --regime hybrid --init-from handcrafted --epochs 6 --lr 2e-4 \
          --mix sim=0.1,handcrafted=0.3,style=0.2,style_handcrafted=0.4 --translator "$T"
    train hyb_e8 --regime hybrid --epochs 8 --mix $EVEN --translator "$T"
    train style_e8 --regime style --epochs 8 --translator "$T"
    train hc_e8 --regime handcrafted --epochs 8
    train hyb_sh --regime hybrid --epochs 8 --mix sim=0.0,handcrafted=0.25,style=0.25,style_handcrafted=0.5 --translator "$T"
    while pgrep -f train-translator >/dev/null; do sleep 5; done
    for t in c05 c1 c2L; do train "hyb_$t" --regime hybrid --mix $EVEN --translator "$M/translator_$t.pt"; done
    train style_c1 --regime style --translator "$M/translator_c1.pt"
    ALL="$T $M/translator_c05.pt $M/translator_c1.pt $M/translator_c2L.pt"
    train hyb_multi --regime hybrid --mix $EVEN --translator $ALL
    train style_multi --regime style --translator $ALL
    wait ;;
  *) echo "usage: $0 translators|regimes|longer" >&2; exit 2 ;;
esac
