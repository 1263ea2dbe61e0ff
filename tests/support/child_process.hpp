// The stopscan binary as a child process, for tests that send it signals: start it with its
// output captured, wait until its signal handlers are installed, and collect its exit status.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace stopscan::test {

class ChildProcess {
public:
    /// Starts `program args...` with standard output and error appended to `log_path`.
    ChildProcess(const std::string& program, const std::vector<std::string>& args,
                 const std::string& log_path)
        : program_(program) {
        std::vector<std::string> argv_storage{program};
        argv_storage.insert(argv_storage.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_storage) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                ::dup2(fd, STDOUT_FILENO);
                ::dup2(fd, STDERR_FILENO);
            }
            ::execv(program.c_str(), argv.data());
            ::_exit(127);
        }
    }
    ~ChildProcess() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }

    /// Waits until the child catches SIGINT and SIGTERM (its SigCgt mask in /proc), so that a
    /// signal sent afterwards reaches stopscan's handlers rather than the default action.
    /// Returns false if the child exited first.
    bool wait_for_signal_handlers() const {
        const unsigned long long wanted = (1ULL << (SIGINT - 1)) | (1ULL << (SIGTERM - 1));
        // Until exec, the child is a copy of the test process, whose own handlers (Catch2
        // catches SIGINT and SIGTERM) would pass for stopscan's: wait for the new image first.
        std::error_code ec;
        const auto program = std::filesystem::canonical(program_, ec);
        for (;;) {
            const auto image =
                std::filesystem::read_symlink("/proc/" + std::to_string(pid_) + "/exe", ec);
            if (ec || image != program) {
                if (exited_now()) return false;
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
                continue;
            }
            std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
            std::string line;
            bool zombie = !status;
            while (std::getline(status, line)) {
                if (line.rfind("State:", 0) == 0 && line.find('Z') != std::string::npos)
                    zombie = true;
                if (line.rfind("SigCgt:", 0) == 0) {
                    const unsigned long long caught = std::stoull(line.substr(7), nullptr, 16);
                    if ((caught & wanted) == wanted) return true;
                }
            }
            if (zombie) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }

    void send(int signal) const { ::kill(pid_, signal); }

    /// Waits for the child; returns its exit code, or 128 + signal if a signal killed it.
    int wait() {
        if (reaped_) return status_;
        int status = 0;
        ::waitpid(pid_, &status, 0);
        reaped_ = true;
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return status_;
    }

    /// True once the child has exited (reaping it; wait() then returns its status).
    bool exited() {
        if (reaped_) return true;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            reaped_ = true;
            status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return true;
        }
        return false;
    }

    /// The exit status recorded by exited().
    int status() const { return status_; }

private:
    // Whether the child has exited, without reaping it.
    bool exited_now() const {
        siginfo_t info{};
        return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
               info.si_pid == pid_;
    }

    std::string program_;
    pid_t pid_ = -1;
    bool reaped_ = false;
    int status_ = -1;
};

/// The whole content of a file ("" if it cannot be read).
inline std::string slurp(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

}  // namespace stopscan::test
