// SPDX-License-Identifier: BSD-3-Clause
// Helper of tests/alloc/test_malloc_dropin.sh: a C++ program using new and
// delete in every form (sized, aligned, nothrow, arrays), the standard
// containers and threads.  Prints a checksum that must not depend on the
// allocator; exits 1 on a failed check.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#define CHECK(c)                                                                     \
	do {                                                                         \
		if (!(c)) {                                                          \
			std::fprintf(stderr, "dropin_cxx: %d: check failed: %s\n", \
				     __LINE__, #c);                                  \
			std::exit(1);                                                \
		}                                                                    \
	} while (0)

struct alignas(256) Wide {
	unsigned char b[300];
};

static std::map<std::string, int> *global_map = new std::map<std::string, int>();

static uint64_t work(int seed)
{
	uint64_t h = 1469598103934665603ULL;
	std::unordered_map<int, std::string> m;
	std::vector<std::unique_ptr<std::vector<int>>> vs;

	for (int i = 0; i < 20000; i++) {
		m[(i * 7919 + seed) % 5000] = std::to_string(i * seed);
		vs.emplace_back(new std::vector<int>(static_cast<size_t>(i % 97), i));
		if (vs.size() > 300)
			vs.erase(vs.begin(), vs.begin() + 150);
	}
	for (int k = 0; k < 5000; k++) {
		auto it = m.find(k);
		if (it != m.end())
			for (char c : it->second)
				h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
	}
	for (auto &v : vs)
		h = (h ^ v->size()) * 1099511628211ULL;
	return h;
}

int main()
{
	uint64_t h = 0;

	(*global_map)["start"] = 1;
	int *one = new int(42);
	int *arr = new int[1000]();
	CHECK(*one == 42 && arr[999] == 0);
	delete one;
	delete[] arr;

	for (int i = 0; i < 100; i++) {
		Wide *w = new Wide();
		CHECK(reinterpret_cast<uintptr_t>(w) % 256 == 0);
		Wide *wa = new Wide[3];
		CHECK(reinterpret_cast<uintptr_t>(wa) % 256 == 0);
		delete w;
		delete[] wa;
		void *pa = ::operator new(1000, std::align_val_t(4096));
		CHECK(reinterpret_cast<uintptr_t>(pa) % 4096 == 0);
		::operator delete(pa, 1000, std::align_val_t(4096));
		void *ps = ::operator new(77);
		::operator delete(ps, 77);
	}
	void *nt = ::operator new(static_cast<size_t>(1) << 62, std::nothrow);
	CHECK(nt == nullptr);
	bool thrown = false;
	try {
		std::vector<char> huge(static_cast<size_t>(1) << 61);
		(void)huge;
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	CHECK(thrown);
	thrown = false;
	try {
		void *big = ::operator new(static_cast<size_t>(1) << 62);
		(void)big;
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	CHECK(thrown);

	std::vector<std::thread> ts;
	std::vector<uint64_t> out(4);
	for (int t = 0; t < 4; t++)
		ts.emplace_back([t, &out] { out[static_cast<size_t>(t)] = work(t + 1); });
	for (auto &t : ts)
		t.join();
	for (uint64_t v : out)
		h ^= v;
	h ^= work(9);
	std::printf("cxx ok %016llx\n", static_cast<unsigned long long>(h));
	delete global_map;
	return 0;
}
