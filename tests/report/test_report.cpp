// The HTML report and the PNG charts: self-contained, complete, escaped, drawn.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <string>

#include "stopscan/disclosure.hpp"
#include "stopscan/engine.hpp"
#include "stopscan/report.hpp"
#include "stopscan/scenario.hpp"
#include "stopscan/settings.hpp"
#include "stopscan/summary.hpp"
#include "stopscan/writers.hpp"

using namespace stopscan;
namespace fs = std::filesystem;

namespace {

struct Run {
    Results results;
    Summary summary;
};

// The default scenario with a name that needs escaping, few replications.
const Run& small_run() {
    static const Run run = [] {
        auto settings = Settings::parse_ini(default_scenario_text(), "");
        settings.apply_override("scenario.name=Test <&> \"quoted\" scenario");
        auto scenario = std::make_shared<const Scenario>(load_scenario(settings));
        RunOptions options;
        options.replications = 8;
        options.threads = 2;
        const Engine engine(make_run_plan(scenario, options));
        Run r{engine.run(), {}};
        r.summary = summarize(r.results);
        return r;
    }();
    return run;
}

std::string html() {
    static const std::string text = [] {
        const Run& r = small_run();
        return report_html(r.results, r.summary,
                           manifest_json(r.results, {"stopscan run", "", "", {}}));
    }();
    return text;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("the report holds every section and one svg per chart") {
    const std::string h = html();
    for (const char* id :
         {"headline", "chart-stop-ratio", "chart-exposure", "chart-causes", "chart-persons",
          "chart-disclosures", "chart-identification", "chart-fpir", "chart-fnir", "flags",
          "assumptions", "method", "provenance"})
        CHECK(h.find("id=\"" + std::string(id) + "\"") != std::string::npos);
    CHECK(count(h, "<svg ") == report_charts(small_run().results, small_run().summary).size());
    CHECK(count(h, "<svg ") >= 6);
    CHECK(h.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(h.find("@media print") != std::string::npos);
}

TEST_CASE("the report makes no external reference and runs no script") {
    std::string h = html();
    // The SVG namespace is an identifier, not a request: remove it before looking for URLs.
    const std::string ns = "xmlns=\"http://www.w3.org/2000/svg\"";
    for (auto at = h.find(ns); at != std::string::npos; at = h.find(ns)) h.erase(at, ns.size());
    CHECK(h.find("http://") == std::string::npos);
    CHECK(h.find("https://") == std::string::npos);
    CHECK(h.find("src=") == std::string::npos);
    CHECK(h.find("<script") == std::string::npos);
    CHECK(h.find("@import") == std::string::npos);
    CHECK(h.find("url(") == std::string::npos);
    CHECK(h.find("<link") == std::string::npos);
    CHECK(h.find("@font-face") == std::string::npos);
    // Every link is to an anchor of the page itself.
    const std::regex href("href=\"([^\"]*)\"");
    for (auto it = std::sregex_iterator(h.begin(), h.end(), href); it != std::sregex_iterator();
         ++it)
        CHECK((*it)[1].str().rfind('#', 0) == 0);
}

TEST_CASE("every figure has a caption and every chart a text alternative") {
    const std::string h = html();
    CHECK(count(h, "<figure>") == count(h, "<figcaption>"));
    CHECK(count(h, "<figure>") == count(h, "<svg "));
    CHECK(count(h, "role=\"img\"") == count(h, "<svg "));
    CHECK(count(h, "aria-label=") >= count(h, "<svg "));
    CHECK(count(h, "<title id=") == count(h, "<svg "));
    // A table of numbers under every chart.
    CHECK(count(h, "The numbers of the chart above") == count(h, "<svg "));
}

TEST_CASE("the headline is in words with numbers") {
    const Run& r = small_run();
    const std::string headline = report_headline(r.results, r.summary);
    CHECK(std::regex_search(headline, std::regex("[0-9]+\\.[0-9]+")));
    CHECK(headline.find("per 100,000 people over one year") != std::string::npos);
    CHECK(headline.find("firewall") != std::string::npos);
    CHECK(html().find(html_escape(headline.substr(0, headline.find('\n')))) != std::string::npos);
}

TEST_CASE("text is escaped for HTML") {
    CHECK(html_escape("a <b> & \"c\" 'd'") == "a &lt;b&gt; &amp; &quot;c&quot; &#39;d&#39;");
    const std::string h = html();
    CHECK(h.find("Test &lt;&amp;&gt; &quot;quoted&quot; scenario") != std::string::npos);
    CHECK(h.find("Test <&>") == std::string::npos);
}

TEST_CASE("setting comments are read per key, under their section") {
    const auto c = setting_comments(
        "\xEF\xBB\xBF# header comment\n[scenario]\nname = x   # the name\r\n"
        "period = one year\n# whole-line comment\n[database.IABS]\nsize = 5  #  Home Office "
        "# 2023\n");
    CHECK(c.at("scenario.name") == "the name");
    CHECK(c.at("scenario.period").empty());
    CHECK(c.at("database.IABS.size") == "Home Office # 2023");
    CHECK(c.size() == 3);
    // The default scenario's comments reach the report.
    const auto d = setting_comments(default_scenario_text());
    CHECK(d.at("scenario.population").find("Census 2021") != std::string::npos);
    const std::string h = html();
    CHECK(h.find("Census 2021, England &amp; Wales usual residents") != std::string::npos);
    CHECK(h.find("set on the command line") != std::string::npos);  // scenario.name --set
}

TEST_CASE("provenance comes from the manifest") {
    const Run& r = small_run();
    const std::string h = report_html(r.results, r.summary,
                                      "{\n  \"git_commit\": \"abc123\\\"x\",\n  \"seed\": 42,\n}");
    CHECK(h.find("abc123&quot;x") != std::string::npos);
    CHECK(h.find("<code>42</code>") != std::string::npos);
    // Without a manifest, from the results.
    const std::string bare = report_html(r.results, r.summary, "");
    CHECK(bare.find("<code>" + std::to_string(r.results.plan.seed) + "</code>") !=
          std::string::npos);
}

TEST_CASE("PNG charts are written, decodable and not blank") {
    const Run& r = small_run();
    const fs::path dir = fs::temp_directory_path() / ("stopscan-png-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_png_charts(dir.string(), r.results, r.summary);
    std::size_t files = 0;
    for (const char* name :
         {"stop-ratio", "exposure", "causes", "persons", "disclosures", "fpir", "fnir"}) {
        const fs::path file = dir / ("chart-" + std::string(name) + ".png");
        INFO(file.string());
        REQUIRE(fs::exists(file));
        CHECK(fs::file_size(file) > 10'000);
        const cv::Mat image = cv::imread(file.string(), cv::IMREAD_COLOR);
        REQUIRE(!image.empty());
        CHECK(image.cols == 2400);
        CHECK(image.rows >= 1400);
        cv::Scalar mean, sd;
        cv::meanStdDev(image, mean, sd);
        CHECK(sd[0] + sd[1] + sd[2] > 0);
        ++files;
    }
    CHECK(files == 7);
    for (const auto& entry : fs::directory_iterator(dir))  // no temporary left behind
        CHECK(entry.path().filename().string().front() != '.');
    fs::remove_all(dir);
}

TEST_CASE("a release adds its tables as released, with the rule") {
    const Run& r = small_run();
    CHECK(html().find("id=\"release\"") == std::string::npos);

    ReleaseOptions sdc;
    sdc.mode = ReleaseMode::sdc;
    CryptoRandomBits bits;
    const Release suppressed = release_run_tables(r.results, sdc, bits);
    const std::string with_sdc = report_html(r.results, r.summary, "", &suppressed);
    const auto section = with_sdc.find("<section id=\"release\">");
    REQUIRE(section != std::string::npos);
    const std::string body =
        with_sdc.substr(section, with_sdc.find("</section>", section) - section);
    CHECK(count(body, "<table>") == 3);
    CHECK(count(body, "suppressed") > 0);
    CHECK(body.find("(primary)") != std::string::npos);
    // One merged table: its rule is stated once.
    CHECK(count(body, "<p class=\"note\">") == 1);
    CHECK(body.find("k = 10") != std::string::npos);
    CHECK(with_sdc.find("<a href=\"#release\">") != std::string::npos);

    ReleaseOptions dp;
    dp.mode = ReleaseMode::dp;
    dp.max_stops_per_person = 5;
    RunOptions capped;
    capped.replications = 4;
    capped.max_stops_per_person = 5;
    const Engine engine(make_run_plan(r.results.plan.scenario, capped));
    const Results results = engine.run();
    const Summary summary = summarize(results);
    const Release noisy = release_run_tables(results, dp, bits);
    const std::string with_dp = report_html(results, summary, "", &noisy);
    const auto dp_section = with_dp.find("<section id=\"release\">");
    REQUIRE(dp_section != std::string::npos);
    const std::string dp_body =
        with_dp.substr(dp_section, with_dp.find("</section>", dp_section) - dp_section);
    CHECK(dp_body.find("combined 95% interval of Monte Carlo error and privacy noise") !=
          std::string::npos);
    // Displayed values are clamped at zero: no negative number in the cells.
    CHECK_FALSE(std::regex_search(dp_body, std::regex("<td>-[0-9]")));
    CHECK(count(dp_body, "<p class=\"note\">") == 3);
}
