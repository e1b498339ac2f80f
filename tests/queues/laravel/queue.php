<?php
// Laravel 8's queue (Debian's php-laravel-framework) without a whole app: the framework's own
// Queue capsule, RedisQueue over phpredis, Worker loop and database failed-job provider.
//   php queue.php work           the worker (`artisan queue:work redis` in an app)
//   php queue.php produce        jobs through Queue::push / later
//   php queue.php counts         Laravel's own counts as JSON
// Environment: REDIS_PORT, PG_PORT, STATE_DIR (where the handlers note that they started).

require_once 'Illuminate/Queue/autoload.php';
require_once 'Illuminate/Redis/autoload.php';
require_once 'Illuminate/Events/autoload.php';
require_once 'Illuminate/Database/autoload.php';

use Illuminate\Container\Container;
use Illuminate\Database\Capsule\Manager as DB;
use Illuminate\Events\Dispatcher;
use Illuminate\Queue\Capsule\Manager as Queue;
use Illuminate\Queue\Events\JobFailed;
use Illuminate\Queue\Failed\DatabaseUuidFailedJobProvider;
use Illuminate\Queue\Worker;
use Illuminate\Queue\WorkerOptions;
use Illuminate\Redis\RedisManager;

const PREFIX = 'myapp_database_';  // Laravel's default redis prefix is Str::slug(APP_NAME).'_database_'

class SleepHandler {
    public function fire($job, $data) {
        touch(getenv('STATE_DIR') . '/running-' . $job->getJobId());
        sleep($data['seconds']);
        $job->delete();
    }
}

class QuickHandler {
    public function fire($job, $data) {
        $job->delete();
    }
}

class FailHandler {
    public function fire($job, $data) {
        throw new RuntimeException('boom');
    }
}

class Handler implements Illuminate\Contracts\Debug\ExceptionHandler {
    public function report(Throwable $e) {
        fwrite(STDERR, get_class($e) . ': ' . $e->getMessage() . "\n");
    }
    public function shouldReport(Throwable $e) { return false; }
    public function render($request, Throwable $e) { return null; }
    public function renderForConsole($output, Throwable $e) {}
}

$container = new Container();
Container::setInstance($container);
$events = new Dispatcher($container);
$container->instance('events', $events);
$container->instance(Illuminate\Contracts\Events\Dispatcher::class, $events);
$container->instance('redis', new RedisManager($container, 'phpredis', [
    'options' => ['prefix' => PREFIX],
    'default' => ['host' => '127.0.0.1', 'port' => (int) getenv('REDIS_PORT'), 'database' => 0],
]));

$db = new DB($container);
$db->addConnection(['driver' => 'pgsql', 'host' => '127.0.0.1', 'port' => (int) getenv('PG_PORT'),
                    'database' => 'postgres', 'username' => 'postgres', 'password' => '', 'charset' => 'utf8',
                    'prefix' => '', 'schema' => 'public']);
$db->setAsGlobal();
$failer = new DatabaseUuidFailedJobProvider($db->getDatabaseManager(), 'default', 'failed_jobs');

$queue = new Queue($container);
$queue->addConnection(['driver' => 'redis', 'connection' => 'default', 'queue' => 'default', 'retry_after' => 3600,
                       'block_for' => null]);
$queue->setAsGlobal();

switch ($argv[1] ?? '') {
case 'migrate':
    // Laravel 8's create_failed_jobs_table migration.
    DB::schema()->create('failed_jobs', function ($table) {
        $table->id();
        $table->string('uuid')->unique();
        $table->text('connection');
        $table->text('queue');
        $table->longText('payload');
        $table->longText('exception');
        $table->timestamp('failed_at')->useCurrent();
    });
    break;
case 'work':
    // What `artisan queue:work` sets up: failed jobs are logged by the failer.
    $events->listen(JobFailed::class, function ($event) use ($failer) {
        $failer->log($event->connectionName, $event->job->getQueue(), $event->job->getRawBody(), $event->exception);
    });
    $worker = new Worker($queue->getQueueManager(), $events, new Handler(), function () { return false; });
    $worker->daemon('default', $argv[2] ?? 'default', new WorkerOptions('default', 0, 256, 0, 1, 1));
    break;
case 'produce-done':
    for ($i = 0; $i < 3; $i++) Queue::push('QuickHandler', []);
    for ($i = 0; $i < 2; $i++) Queue::push('FailHandler', []);
    break;
case 'produce-rest':
    Queue::push('SleepHandler', ['seconds' => 600]);
    for ($i = 0; $i < 4; $i++) Queue::push('QuickHandler', ['n' => $i]);
    for ($i = 0; $i < 2; $i++) Queue::later(3600, 'QuickHandler', []);
    for ($i = 0; $i < 3; $i++) Queue::push('QuickHandler', [], 'reports');
    break;
case 'counts':
    $failed = $failer->all();
    $out = ['size' => [], 'failed' => count($failed), 'failed_by_queue' => (object) array_count_values(
        array_map(function ($job) { return $job->queue; }, $failed))];
    foreach (array_slice($argv, 2) as $name) {
        $out['size'][$name] = Queue::connection()->size($name);
    }
    echo json_encode($out), "\n";
    break;
default:
    fwrite(STDERR, "usage: php queue.php migrate|work [queue]|produce-done|produce-rest|counts QUEUE...\n");
    exit(2);
}
