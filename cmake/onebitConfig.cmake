# Package file of an installed onebit: find_package(onebit) defines the
# imported target onebit::onebit, which brings its include directory, C++17
# and the threads library along.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
include("${CMAKE_CURRENT_LIST_DIR}/onebitTargets.cmake")
