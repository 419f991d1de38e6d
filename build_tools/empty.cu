// Empty: lets build_tools/cuda_build.py ask nvcc (-dryrun) where its toolkit is.
