<?php
// Laravel's own database queue on a MySQL/MariaDB server, for the integration tests: the jobs
// and failed_jobs tables come from Laravel's migration stubs (`php artisan queue:table`,
// `queue:failed-table`) run by its schema builder, jobs are pushed with its Queue API,
// taken by its Worker, failed jobs logged by its failed-job provider as `queue:work` does,
// and counted through its own API. Uses Debian's php-laravel-framework (8.83) and php-mysql.
//
// php laravel_database_queue.php HOST PORT USER PASSWORD_FILE DATABASE COMMAND [ARGS...]
//   migrate                      create jobs and failed_jobs from Laravel's stubs
//   push QUEUE N                 N jobs that succeed, available now
//   later QUEUE N SECONDS        N jobs that succeed, available in SECONDS
//   fail QUEUE N                 N jobs that throw, then one worker run per job (maxTries 1)
//   reserve QUEUE                one worker takes the next job and stops before finishing it
//   work QUEUE                   one worker run: takes the next job and processes it
//   counts QUEUE...              "size QUEUE N" (Queue::size) and "failed QUEUE N" (failer->all())

require_once 'Illuminate/autoload.php';

use Illuminate\Container\Container;
use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Database\Capsule\Manager as Database;
use Illuminate\Events\Dispatcher;
use Illuminate\Queue\Capsule\Manager as QueueCapsule;
use Illuminate\Queue\Events\JobFailed;
use Illuminate\Queue\Failed\DatabaseUuidFailedJobProvider;
use Illuminate\Queue\Worker;
use Illuminate\Queue\WorkerOptions;
use Illuminate\Support\Facades\Facade;

// A job that does its work and is deleted by the worker.
class SendWelcomeMail
{
    public function fire($job, $data)
    {
        $job->delete();
    }
}

// A job that fails every time.
class ChargeCard
{
    public function fire($job, $data)
    {
        throw new RuntimeException('card declined');
    }
}

class ReportToStderr implements ExceptionHandler
{
    public function report(Throwable $e) {}
    public function shouldReport(Throwable $e) { return false; }
    public function render($request, Throwable $e) { throw $e; }
    public function renderForConsole($output, Throwable $e) { fwrite(STDERR, $e->getMessage() . "\n"); }
}

[$host, $port, $user, $passwordFile, $database, $command] = array_slice($argv, 1, 6);
$args = array_slice($argv, 7);

$container = new Container();
Container::setInstance($container);
Facade::setFacadeApplication($container);

$capsule = new Database($container);
$capsule->addConnection([
    'driver' => 'mysql', 'host' => $host, 'port' => $port, 'database' => $database, 'username' => $user,
    'password' => rtrim(file_get_contents($passwordFile), "\n"),
    'charset' => 'utf8mb4', 'collation' => 'utf8mb4_unicode_ci', 'prefix' => '',
]);
$capsule->setAsGlobal();
$container->instance('db', $capsule->getDatabaseManager());

$events = new Dispatcher($container);
$container->instance(\Illuminate\Contracts\Events\Dispatcher::class, $events);
$container->instance('events', $events);

$queue = new QueueCapsule($container);
$queue->addConnection(['driver' => 'database', 'table' => 'jobs', 'queue' => 'default', 'retry_after' => 3600]);
$queue->setAsGlobal();
$manager = $queue->getQueueManager();

$failer = new DatabaseUuidFailedJobProvider($capsule->getDatabaseManager(), 'default', 'failed_jobs');
// What `php artisan queue:work` does with a job that failed (WorkCommand::logFailedJob).
$events->listen(JobFailed::class, function (JobFailed $event) use ($failer) {
    $failer->log($event->connectionName, $event->job->getQueue(), $event->job->getRawBody(), $event->exception);
});

$worker = new Worker($manager, $events, new ReportToStderr(), function () { return false; });
$options = new WorkerOptions('default', 0, 128, 60, 0, 1);

switch ($command) {
    case 'migrate':
        foreach (['jobs' => 'Jobs', 'failed_jobs' => 'FailedJobs'] as $table => $class) {
            $stub = file_get_contents("/usr/share/php/Illuminate/Queue/Console/stubs/{$table}.stub");
            $code = str_replace(['{{table}}', '{{tableClassName}}', '<?php'], [$table, $class, ''], $stub);
            eval($code);
            $migration = "Create{$class}Table";
            (new $migration())->up();
        }
        break;
    case 'push':
        for ($i = 0; $i < (int) $args[1]; $i++) {
            $queue->connection()->push(SendWelcomeMail::class, ['user' => $i], $args[0]);
        }
        break;
    case 'later':
        for ($i = 0; $i < (int) $args[1]; $i++) {
            $queue->connection()->later((int) $args[2], SendWelcomeMail::class, ['user' => $i], $args[0]);
        }
        break;
    case 'fail':
        for ($i = 0; $i < (int) $args[1]; $i++) {
            $queue->connection()->push(ChargeCard::class, ['order' => $i], $args[0]);
            $worker->runNextJob('default', $args[0], $options);
        }
        break;
    case 'reserve':
        // Popping reserves the job (reserved_at, attempts): a worker busy with it, or one that died.
        if (!$queue->connection()->pop($args[0])) {
            fwrite(STDERR, "no job to reserve on {$args[0]}\n");
            exit(1);
        }
        break;
    case 'work':
        $worker->runNextJob('default', $args[0], $options);
        break;
    case 'counts':
        $failed = [];
        foreach ($failer->all() as $row) {
            $failed[$row->queue] = ($failed[$row->queue] ?? 0) + 1;
        }
        foreach ($args as $name) {
            echo "size {$name} " . $queue->connection()->size($name) . "\n";
            echo "failed {$name} " . ($failed[$name] ?? 0) . "\n";
        }
        break;
    default:
        fwrite(STDERR, "unknown command {$command}\n");
        exit(2);
}
